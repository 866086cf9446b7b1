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
// sources keep OHIF's behaviour.  It also loads Cornerstone's HTJ2K decoder
// while OHIF starts, holding image requests until it is ready.  See
// deploy/README.md (which also recommends `thumbnailRendering: 'thumbnail'`).
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

/**
 * An 8x8 HTJ2K Lossless codestream (zeros; 164 bytes, OpenJPH via imagecodecs).
 * Decoding it makes each of Cornerstone's decoding workers fetch, compile and
 * instantiate the HTJ2K decoder (OpenJPH WebAssembly, 2 MB in OHIF 3.13.2)
 * while OHIF starts up and loads the study's metadata, instead of when the
 * first frame's bytes are already there: with nothing cached, that load was
 * most of the time from the first pixel request to the first image (1.3 s of
 * 1.7 s under Chromium's "4g"; see benchmarks/README.md, `## progressive`).
 */
const WARM_UP_CODESTREAM =
  '/0//UQApQAAAAAAIAAAACAAAAAAAAAAAAAAACAAAAAgAAAAAAAAAAAABDwEB/1AACAACAAAACf9SAAwAAgABAAEEBEAB' +
  '/1wAByCIiIiI/2QAFwABT3BlbkpQSCBWZXIgMC4yNi4zLv+QAAoAAAAAADsAAf+TwAAuoP9//3//f/9//3//f/9//3//' +
  'f/9//3//f/9//3//f/9/APWXQgAxuAAA/9k=';

/** Longest time image requests wait for the decoder (ms). */
const WARM_UP_HOLD_MS = 5000;

/**
 * Loads the HTJ2K decoder in every decoding worker, once, and holds back
 * Cornerstone's interaction and prefetch requests (the shown image's stages,
 * OHIF's stack prefetch, volume loading) until it is ready.  Holding them
 * costs next to nothing (a round trip: none of those images can be decoded
 * earlier); letting them run costs a download of the decoder per decode that
 * starts while it is still loading (Cornerstone's HTJ2K decoder does not
 * share a pending load).  Thumbnail requests are not held.  On an error or
 * after WARM_UP_HOLD_MS the requests are released and Cornerstone loads the
 * decoder as it would have.
 */
let warmedUp = false;
function warmUpDecoder(cornerstone) {
  const manager = cornerstone.getWebWorkerManager?.();
  const workers = manager?.workerRegistry?.dicomImageLoader?.instances?.length;
  if (warmedUp || !manager?.executeTask || !workers) {
    return;
  }
  warmedUp = true;
  const bytes = Uint8Array.from(atob(WARM_UP_CODESTREAM), (c) => c.charCodeAt(0));
  const tasks = [];
  for (let i = 0; i < workers; i += 1) {
    // Queued at once, so the worker manager gives each worker one.
    tasks.push(
      manager.executeTask('dicomImageLoader', 'decodeTask', {
        imageFrame: {
          rows: 8,
          columns: 8,
          bitsAllocated: 16,
          bitsStored: 16,
          pixelRepresentation: 0,
          samplesPerPixel: 1,
          photometricInterpretation: 'MONOCHROME2',
        },
        transferSyntax: '1.2.840.10008.1.2.4.202',
        pixelData: bytes.slice(),
        options: { preScale: { enabled: false } },
        decodeConfig: {},
      })
    );
  }
  const pool = cornerstone.imageLoadPoolManager;
  const { Interaction, Prefetch } = cornerstone.Enums?.RequestType ?? {};
  if (!pool?.setMaxSimultaneousRequests || !Interaction || !Prefetch) {
    return;
  }
  const limits = new Map(
    [Interaction, Prefetch].map((type) => [type, pool.getMaxSimultaneousRequests(type)])
  );
  for (const type of limits.keys()) {
    pool.setMaxSimultaneousRequests(type, 0);
  }
  let released = false;
  const release = () => {
    if (!released) {
      released = true;
      for (const [type, limit] of limits) {
        // Keep a limit set meanwhile by someone else.
        if (pool.getMaxSimultaneousRequests(type) === 0) {
          pool.setMaxSimultaneousRequests(type, limit);
        }
      }
      pool.startGrabbing?.();
    }
  };
  setTimeout(release, WARM_UP_HOLD_MS);
  Promise.allSettled(tasks).then(release);
}

const OHIF_VOLUME_STRATEGIES = ['nth', 'interleaveCenter', 'interleaveTopToBottom'];

function cornerstoneOf(extensionManager) {
  const entry = extensionManager.getModuleEntry(
    '@ohif/extension-cornerstone.utilityModule.common'
  );
  return entry.exports.getCornerstoneLibraries().cornerstone;
}

function wantsWarmUp(setting) {
  return Boolean(setting) && !(typeof setting === 'object' && setting.warmUp === false);
}

function activeDataSourceConfig(extensionManager) {
  const [source] = extensionManager.getActiveDataSource?.() ?? [];
  return source?.getConfig?.() ?? {};
}

export default {
  id: 'dicomweb-archive.progressive-loading',

  preRegistration({ extensionManager, appConfig }) {
    // The decoder, as early as OHIF allows: its cornerstone extension,
    // registered before this one, has started the decoding workers, and the
    // link is mostly idle while OHIF starts up.  Done when any data source
    // has `progressiveLoading` (the active one is not known yet), unless it
    // says `{ warmUp: false }`.
    const sources = appConfig?.dataSources ?? [];
    if (sources.some((source) => wantsWarmUp(source?.configuration?.progressiveLoading))) {
      try {
        warmUpDecoder(cornerstoneOf(extensionManager));
      } catch {
        // not yet available: onModeEnter warms up instead
      }
    }
  },

  onModeEnter({ servicesManager, extensionManager }) {
    // `progressiveLoading`: true for the recommended stages; { firstBytes }
    // for them with another first request size; or { stack, volume } with
    // Cornerstone retrieve configurations of one's own (a missing key keeps
    // OHIF's default for that viewport type).  `warmUp: false` in the object
    // leaves the decoder to be loaded on first use.
    const setting = activeDataSourceConfig(extensionManager).progressiveLoading;
    if (!setting) {
      return;
    }
    const cornerstone = cornerstoneOf(extensionManager);
    if (wantsWarmUp(setting)) {
      warmUpDecoder(cornerstone);
    }
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
