"""Synthetic but realistic DICOM studies, generated with pydicom and numpy.

:func:`write_ct_series` writes an axial CT series of a chest/abdomen phantom the
way a scanner would: one CT Image Storage file per slice, 16-bit signed pixels
with a Hounsfield rescale, consistent patient geometry, and deterministic UIDs
so the same seed always gives the same files byte for byte.
:func:`write_multiframe` writes one multi-frame instance of any size (a cine,
a tomosynthesis stack), its Pixel Data a frame at a time.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    generate_uid,
)

#: Reconstruction field of view and slice spacing, in millimetres.
FIELD_OF_VIEW = 350.0
SLICE_SPACING = 1.25
#: Stored value outside the reconstruction circle (HU -3024), as scanners pad.
PADDING_VALUE = -2000
RESCALE_INTERCEPT = -1024
_STUDY_DATE, _STUDY_TIME = "20240315", "101500.000000"


def _uid(*parts: object) -> UID:
    """A UID derived from ``parts`` only: same parts, same UID."""
    return generate_uid(entropy_srcs=["dicomweb-archive samples", *map(str, parts)])


def _ds(value: float) -> str:
    """A Decimal String of at most 16 characters."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _template(
    study: str,
    series: str,
    frame_of_reference: str,
    *,
    rows: int,
    columns: int,
    spacing: float,
    series_number: int,
    patient_name: str,
    patient_id: str,
    seed: int,
) -> Dataset:
    """Everything every slice of the series shares."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceCreationDate, ds.InstanceCreationTime = _STUDY_DATE, "101812.000000"
    ds.SOPClassUID = CTImageStorage
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = _STUDY_TIME
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = "101703.250000"
    ds.AccessionNumber = f"ACC{seed:07d}"
    ds.Modality = "CT"
    ds.Manufacturer = "DICOMweb Archive"
    ds.InstitutionName = "Synthetic General Hospital"
    ds.ReferringPhysicianName = "Referrer^Rita"
    ds.StationName = "CTSIM01"
    ds.StudyDescription = "CT CHEST ABDOMEN WITH CONTRAST"
    ds.ProcedureCodeSequence = Sequence([_code("CTCAP", "CT chest abdomen pelvis")])
    ds.SeriesDescription = f"Axial {SLICE_SPACING} mm soft tissue"
    ds.PhysiciansOfRecord = "Radiologist^Ray"
    ds.OperatorsName = "Tech^Tess"
    ds.ManufacturerModelName = "Phantom 300"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.IssuerOfPatientID = "DWA"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.PatientAge = "054Y"
    ds.PatientSize, ds.PatientWeight = "1.75", "72"
    ds.BodyPartExamined = "CHEST"
    _ct_acquisition(ds)
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = str(1000 + seed % 9000)
    ds.SeriesNumber = str(series_number)
    ds.AcquisitionNumber = "1"
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = frame_of_reference
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, columns
    ds.PixelSpacing = [_ds(spacing), _ds(spacing)]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.PixelPaddingValue = PADDING_VALUE
    ds.WindowCenter, ds.WindowWidth = ["40", "-600"], ["400", "1500"]
    ds.RescaleIntercept, ds.RescaleSlope = str(RESCALE_INTERCEPT), "1"
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = ["WINDOW1", "WINDOW2"]
    ds.LossyImageCompression = "00"
    block = ds.private_block(0x0009, "DWA SAMPLES 1.0", create=True)
    block.add_new(0x10, "LO", "synthetic phantom")
    block.add_new(0x11, "SL", seed)
    return ds


def _ct_acquisition(ds: Dataset) -> None:
    """The CT acquisition every sample series shares (scanner, technique, reconstruction)."""
    ds.ContrastBolusAgent = "Iohexol"
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = _ds(SLICE_SPACING)
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.DeviceSerialNumber = "0000001"
    ds.SoftwareVersions = "dwa-samples 1"
    ds.ProtocolName = "Chest/Abdomen"
    ds.ReconstructionDiameter = _ds(FIELD_OF_VIEW)
    ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = "1085.6", "595"
    ds.GantryDetectorTilt, ds.TableHeight = "0", "160"
    ds.RotationDirection = "CW"
    ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure = "500", "250", "125"
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = "30"
    ds.FocalSpots = "0.7"
    ds.ConvolutionKernel = "STANDARD"
    ds.PatientPosition = "HFS"
    ds.RevolutionTime, ds.SingleCollimationWidth = 0.5, 0.625
    ds.TotalCollimationWidth, ds.SpiralPitchFactor = 40.0, 0.984375
    ds.CTDIvol = 8.4


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodeMeaning = value, meaning
    item.CodingSchemeDesignator = "LOCAL"
    return item


def _ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, ax: float, ay: float
) -> np.ndarray:
    """The normalised squared radius: ``<= s**2`` is the ellipse scaled by ``s``."""
    q: np.ndarray = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2
    return q


class _Phantom:
    """A chest/abdomen phantom in HU; ``t`` runs from 0 (top) to 1 (bottom)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.shape = x.shape
        self.outside = x**2 + y**2 > (FIELD_OF_VIEW / 2) ** 2
        self.table = (y > 125) & (y < 135) & (np.abs(x) < 170)
        self.body = _ellipse(x, y, 0, 0, 160, 115)
        self.muscle = _ellipse(x, y, 0, 0, 148, 103)
        self.lungs = np.minimum(_ellipse(x, y, -72, -8, 48, 72), _ellipse(x, y, 72, -8, 48, 72))
        self.liver = _ellipse(x, y, -55, 0, 70, 60)
        self.aorta = _ellipse(x, y, 18, 40, 13, 13) <= 1
        self.vertebra = _ellipse(x, y, 0, 80, 20, 17)
        self.rng = np.random.default_rng(seed)

    def slice(self, t: float, z: float) -> np.ndarray:
        """Stored values (HU - intercept) of the slice at ``t``, position ``z``."""
        hu = np.full(self.shape, -1000, dtype=np.int16)
        np.copyto(hu, -300, where=self.table)
        grow = (0.92 + 0.08 * math.sin(math.pi * t)) ** 2
        np.copyto(hu, -100, where=self.body <= grow)  # subcutaneous fat
        np.copyto(hu, 40, where=self.muscle <= grow)  # soft tissue
        lungs = 1.0 - t / 0.55
        if lungs > 0.05:
            np.copyto(hu, -850, where=self.lungs <= lungs)
        if t > 0.45:
            np.copyto(hu, 60, where=self.liver <= min(1.0, (t - 0.45) / 0.2) ** 2)
        np.copyto(hu, 250, where=self.aorta)  # contrast-filled aorta
        # Vertebrae alternate with discs every 30 mm.
        disc = (z % 30.0) < 6.0
        np.copyto(hu, 90 if disc else 700, where=self.vertebra <= 1)
        if not disc:
            np.copyto(hu, 250, where=self.vertebra <= 0.5)  # cancellous bone
        # Triangular noise (sum of two random nibbles), sigma about 6.5 HU.
        bits = np.frombuffer(self.rng.bytes(hu.size), np.uint8).reshape(self.shape)
        noise = (bits & 15).astype(np.int16) + (bits >> 4) - 15
        stored = np.clip(hu - RESCALE_INTERCEPT + noise, -1024, 3071)
        np.copyto(stored, PADDING_VALUE, where=self.outside)
        out: np.ndarray = stored.astype("<i2")
        return out


def write_ct_series(
    folder: str | Path,
    *,
    slices: int = 300,
    rows: int = 512,
    columns: int = 512,
    study_instance_uid: str | None = None,
    series_number: int = 1,
    patient_name: str = "Demo^CT",
    patient_id: str = "DWA-DEMO-1",
    seed: int = 0,
) -> list[Path]:
    """Write an axial CT series into ``folder``; returns the files, top slice first."""
    if slices < 1 or rows < 1 or columns < 1:
        raise ValueError("slices, rows and columns must be positive")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    study = study_instance_uid or _uid("study", seed, patient_id)
    series = _uid("series", seed, study, series_number)
    spacing = float(_ds(FIELD_OF_VIEW / max(rows, columns)))
    ds = _template(
        study,
        series,
        _uid("frame-of-reference", seed, study),
        rows=rows,
        columns=columns,
        spacing=spacing,
        series_number=series_number,
        patient_name=patient_name,
        patient_id=patient_id,
        seed=seed,
    )
    x0 = float(_ds(-(columns - 1) * spacing / 2))
    y0 = float(_ds(-(rows - 1) * spacing / 2))
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    phantom = _Phantom(x0 + x * spacing, y0 + y * spacing, seed)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    ds.file_meta = meta
    width = max(4, len(str(slices)))
    written = []
    for index in range(slices):
        z = -index * SLICE_SPACING  # head first supine: slices go towards the feet
        sop = _uid("instance", seed, series, index)
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = sop
        ds.InstanceNumber = str(index + 1)
        ds.ImagePositionPatient = [_ds(x0), _ds(y0), _ds(z)]
        ds.SliceLocation = _ds(z)
        ds.PixelData = phantom.slice(index / max(1, slices - 1), z).tobytes()
        ds["PixelData"].VR = "OW"
        path = out / f"CT{index + 1:0{width}d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        written.append(path)
    return written


#: Multi-frame Grayscale Word Secondary Capture Image Storage.
MULTIFRAME_SOP_CLASS = UID("1.2.840.10008.5.1.4.1.1.7.3")
#: The largest defined length of a value (PS3.5 7.1.1): 0xFFFFFFFF is undefined.
_MAX_LENGTH = 0xFFFFFFFE


def write_multiframe(
    path: str | Path,
    *,
    frames: int,
    rows: int = 512,
    columns: int = 512,
    patient_id: str = "DWA-DEMO-MF",
    seed: int = 0,
) -> Path:
    """Write one multi-frame instance of ``frames`` 16-bit frames to ``path``.

    A Multi-frame Grayscale Word Secondary Capture (a cine at 30 frames per
    second), Explicit VR Little Endian, ``2 * rows * columns`` bytes a frame:
    any size up to 4 GB, written a frame at a time.  Each frame is a gradient
    moved by its number, so no two frames are the same.
    """
    if frames < 1 or rows < 1 or columns < 1:
        raise ValueError("frames, rows and columns must be positive")
    frame_length = 2 * rows * columns
    if frames * frame_length > _MAX_LENGTH:
        raise ValueError(f"{frames} frames of {frame_length} bytes exceed a value's 4 GB")
    study = _uid("multiframe-study", seed, patient_id)
    series = _uid("multiframe-series", seed, study)
    sop = _uid("multiframe-instance", seed, series)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.SOPClassUID = MULTIFRAME_SOP_CLASS
    ds.SOPInstanceUID = sop
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = _STUDY_TIME
    ds.AccessionNumber = f"MF{seed:08d}"
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    ds.Manufacturer = "DICOMweb Archive"
    ds.StudyDescription = "MULTI-FRAME"
    ds.SeriesDescription = f"{frames} frames of {rows}x{columns}"
    ds.PatientName = "Demo^MultiFrame"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.FrameTime = "33.3"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.StudyID = str(1000 + seed % 9000)
    ds.SeriesNumber = "1"
    ds.InstanceNumber = "1"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = str(frames)
    ds.FrameIncrementPointer = 0x00181063  # Frame Time
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MULTIFRAME_SOP_CLASS
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"PYDICOM {pydicom.__version__}"[:16]
    ds.file_meta = meta
    out = Path(path)
    ds.save_as(out, enforce_file_format=True)
    gradient = np.add.outer(np.arange(rows, dtype=np.uint16), np.arange(columns, dtype=np.uint16))
    with open(out, "ab") as fp:
        # (7FE0,0010) OW, its 4-byte length: Pixel Data, the last element.
        fp.write(struct.pack("<HH2s2xL", 0x7FE0, 0x0010, b"OW", frames * frame_length))
        for number in range(frames):
            fp.write(((gradient + number * 7 + seed) & 0x0FFF).astype("<u2").tobytes())
    return out
