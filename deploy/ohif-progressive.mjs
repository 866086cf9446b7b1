// Progressive loading for OHIF (3.13.x) against `dwa serve`: an OHIF extension in
// one plain ES module, loaded by the viewer at run time (no rebuild).
//
// Serve this file beside OHIF's index.html and list its URL in app-config.js:
//
//   window.config = {
//     extensions: ['/dicomweb-archive-progressive.mjs'],
//     dataSources: [{ ..., configuration: { ..., progressiveLoading: true } }],
//   };
//
// OHIF imports a string entry of `extensions` that is not one of its built-in
// names with `import(url)` and registers the module's default export.  In
// every mode, after OHIF's cornerstone extension has installed its defaults
// (stack: one streamed request of /frames/; volume: interleaved, every image
// fetched once, whole), this extension replaces the retrieve configuration of
// stacks and volumes with stages that show a lower-resolution image from the
// first bytes of each HTJ2K frame and complete it from the rest.  It does so
// only when the active data source says `progressiveLoading`, so other data
// sources keep OHIF's behaviour.  See deploy/README.md.
//
// Requires an archive transcoded with `dwa transcode` (HTJ2K Lossless RPCL
// alternates at …/instances/{sop}/htj2k/{n}).  Instances without an alternate
// are answered from their stored frames by `dwa serve` and simply load whole.

/** Cornerstone's ImageQualityStatus values (enums are not reachable as names in JSON). */
const SUBRESOLUTION = 6;

/**
 * Bytes asked for by the first (lossy) request of a frame.  Cornerstone picks
 * the decode level from the fraction received (a quarter or more: full size;
 * a sixteenth: half; less: quarter or eighth), and an RPCL codestream holds its
 * lower resolutions first.  16 KiB is about a tenth of a 512x512 CT slice in
 * HTJ2K lossless (some 170 KB): a half-resolution image, the 1/16 to 1/10 the
 * Cornerstone documentation recommends; a third of a 256x256 slice.  A number,
 * not a function of the image size: retrieve options are posted to Cornerstone's
 * decoding workers, and functions cannot be.
 */
export const FIRST_BYTES = 16384;

/**
 * The retrieve configurations recommended for `dwa serve` over an archive
 * with HTJ2K alternates.  Every stage reads the same stored body
 * (…/htj2k/{n}, one fixed multipart body), so the final request continues
 * where the first one stopped (`Range: bytes=N-`): no byte is fetched twice.
 */
export function recommended(cornerstone, { firstBytes = FIRST_BYTES } = {}) {
  const chunkSize = firstBytes;
  const lossy = {
    framesPath: '/htj2k/',
    rangeIndex: 0,
    chunkSize,
    imageQualityStatus: SUBRESOLUTION,
  };
  const final = { framesPath: '/htj2k/', rangeIndex: -1, chunkSize };
  return {
    // StackViewport: each image shown is fetched in two stages, lossy then final.
    // `default` is what OHIF's stack prefetch uses for the images around the
    // shown one: the whole HTJ2K frame in one request.
    stack: {
      stages: [
        { id: 'lossyStack', retrieveType: 'singleFast' },
        { id: 'finalStack', retrieveType: 'singleFinal' },
      ],
      retrieveOptions: {
        default: { framesPath: '/htj2k/' },
        singleFast: lossy,
        singleFinal: final,
      },
    },
    // Volumes (MPR, 3D): Cornerstone's interleaved order; the first images
    // (middle, first, last) come whole, then every other slice lossy, then
    // the rest of every slice.
    volume: {
      stages: cornerstone.ProgressiveRetrieveImages.interleavedRetrieveStages.stages,
      retrieveOptions: {
        default: { framesPath: '/htj2k/' },
        multipleFast: lossy,
        multipleFinal: final,
      },
    },
  };
}

/**
 * OHIF's hanging protocols name an image load strategy (MPR: 'nth'; others
 * 'interleaveCenter', 'interleaveTopToBottom'): OHIF then queues every slice
 * of a volume itself, whole, with the retrieve configuration switched off for
 * the duration.  This strategy instead lets each volume load itself, through
 * the stages above, and answers what OHIF expects of a strategy: the
 * viewports' volume inputs, which OHIF then puts into the viewports.
 */
function progressiveVolumeStrategy(cornerstone) {
  return ({ data: { viewportId, volumeInputArray } }) => {
    for (const { volumeId } of volumeInputArray) {
      const volume = cornerstone.cache.getVolume(volumeId);
      if (!volume) {
        return undefined; // OHIF warns and falls back to its own loading
      }
      if (!volume.loadStatus?.loading && !volume.loadStatus?.loaded) {
        volume.load();
      }
    }
    return new Map([[viewportId, volumeInputArray]]);
  };
}

const OHIF_VOLUME_STRATEGIES = ['nth', 'interleaveCenter', 'interleaveTopToBottom'];

function cornerstoneOf(extensionManager) {
  const entry = extensionManager.getModuleEntry(
    '@ohif/extension-cornerstone.utilityModule.common'
  );
  return entry.exports.getCornerstoneLibraries().cornerstone;
}

function activeDataSourceConfig(extensionManager) {
  const [source] = extensionManager.getActiveDataSource?.() ?? [];
  return source?.getConfig?.() ?? {};
}

export default {
  id: 'dicomweb-archive.progressive-loading',

  onModeEnter({ servicesManager, extensionManager }) {
    // `progressiveLoading`: true for the recommended stages; { firstBytes }
    // for them with another first request size; or { stack, volume } with
    // Cornerstone retrieve configurations of one's own (a missing key keeps
    // OHIF's default for that viewport type).
    const setting = activeDataSourceConfig(extensionManager).progressiveLoading;
    if (!setting) {
      return;
    }
    const cornerstone = cornerstoneOf(extensionManager);
    const custom = typeof setting === 'object' && (setting.stack || setting.volume);
    const chosen = custom ? setting : recommended(cornerstone, setting === true ? {} : setting);
    const provider = cornerstone.utilities.imageRetrieveMetadataProvider;
    for (const type of ['stack', 'volume']) {
      if (chosen[type]) {
        provider.add(type, chosen[type]);
      }
    }
    if (chosen.volume) {
      const { hangingProtocolService } = servicesManager.services;
      const strategy = progressiveVolumeStrategy(cornerstone);
      for (const name of OHIF_VOLUME_STRATEGIES) {
        hangingProtocolService.registerImageLoadStrategy(name, strategy);
      }
    }
  },
};
