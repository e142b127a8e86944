"""The three fictional sites of the bone-age demo and their X-ray detectors.

Every name here is invented. Sites A and B are the development sites (B's
detector stores MONOCHROME1, bone dark); site C is the external site: an
older, coarser and noisier detector whose gamma compresses soft tissue
towards the background, so the model, trained at A and B, does worse there.
"""

from __future__ import annotations

import dataclasses

from medval.demo._reg_phantom import DetectorModel

__all__ = ["REG_SITES", "RegSite"]


@dataclasses.dataclass(frozen=True)
class RegSite:
    """One hospital, its radiography system and that detector's signature."""

    folder: str
    external: bool
    manufacturer: str
    model_name: str
    software_versions: str
    device_serial: str
    detector_type: str
    kvp: float
    institution: str
    address: str
    department: str
    station_name: str
    operator: str
    referring: tuple[str, ...]
    detector: DetectorModel


REG_SITES: tuple[RegSite, ...] = (
    RegSite(
        folder="site-a",
        external=False,
        manufacturer="Aurelian Imaging",
        model_name="AX-Flat 43",
        software_versions="AuraDR 5.1.0",
        device_serial="AURSN-40917733",
        detector_type="SCINTILLATOR",
        kvp=50.0,
        institution="Brambleton Children's Hospital",
        address="21 Orchard Crescent, Fakeville, ZZ 00021",
        department="Brambleton Paediatric Radiology",
        station_name="BCH-DXROOM1",
        operator="ZZTECH^Imogen^Rattray",
        referring=("ZZDOCTOR^Cosmo^Pettigrew", "ZZDOCTOR^Ariadne^Westmacott"),
        detector=DetectorModel(
            matrix=80,
            pixel_spacing=3.0,
            gain=3000.0,
            offset=300.0,
            gamma=1.0,
            blur_px=0.6,
            noise_sd=40.0,
        ),
    ),
    RegSite(
        folder="site-b",
        external=False,
        manufacturer="Borealis Medical",
        model_name="Polaris DR",
        software_versions="PolarisView 3.4",
        device_serial="BOMSN-62280154",
        detector_type="DIRECT",
        kvp=55.0,
        institution="Kestrel Bay Regional Hospital",
        address="5 Lighthouse Road, Mocktown, ZZ 00022",
        department="Kestrel Bay X-Ray Unit",
        station_name="KBRH-DX-02",
        operator="ZZTECH^Barnaby^Oxenford",
        referring=("ZZDOCTOR^Philippa^Drummond", "ZZDOCTOR^Lucius^Fernsby"),
        detector=DetectorModel(
            matrix=96,
            pixel_spacing=2.5,
            gain=2600.0,
            offset=500.0,
            gamma=0.85,
            blur_px=0.8,
            noise_sd=60.0,
            monochrome1=True,
        ),
    ),
    RegSite(
        folder="site-c",
        external=True,
        manufacturer="Cygnet Radiologic",
        model_name="Cirrus CR-2",
        software_versions="CirrusRead 1.9e",
        device_serial="CYRSN-11836402",
        detector_type="STORAGE",
        kvp=52.0,
        institution="Hollowmere District Hospital",
        address="88 Tanners Lane, Pretendburg, ZZ 00023",
        department="Hollowmere Imaging Services",
        station_name="HDH-CR-OLD",
        operator="ZZTECH^Wendeline^Crabtree",
        referring=("ZZDOCTOR^Auberon^Kettleby", "ZZDOCTOR^Sidonie^Marlow"),
        detector=DetectorModel(
            matrix=64,
            pixel_spacing=3.75,
            gain=2400.0,
            offset=600.0,
            gamma=1.2,
            blur_px=0.9,
            noise_sd=45.0,
        ),
    ),
)
