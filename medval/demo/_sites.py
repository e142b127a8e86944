"""The three fictional sites of the demo cohort and their scanners.

Every name here is invented. Sites 1 and 2 are the development sites; site 3
is the external site, whose scanner blurs, adds noise and compresses the
intensity scale so the lesion is much harder to see.
"""

from __future__ import annotations

import dataclasses

from medval.demo._phantom import Acquisition

__all__ = ["SITES", "Site"]


@dataclasses.dataclass(frozen=True)
class Site:
    """One hospital, its CT scanner and that scanner's acquisition signature."""

    folder: str
    external: bool
    manufacturer: str
    model_name: str
    software_versions: str
    device_serial: str
    kvp: float
    slice_thickness: float
    pixel_spacing: float
    convolution_kernel: str
    institution: str
    address: str
    department: str
    station_name: str
    referring: tuple[str, ...]
    operators: tuple[str, ...]
    acquisition: Acquisition


SITES: tuple[Site, ...] = (
    Site(
        folder="site-1",
        external=False,
        manufacturer="Aster Medical",
        model_name="AX-500",
        software_versions="AsterOS 4.2.1",
        device_serial="AXSN-77104522",
        kvp=120.0,
        slice_thickness=1.0,
        pixel_spacing=0.70,
        convolution_kernel="AST-SOFT-B30",
        institution="Northwind General Hospital",
        address="1200 Northwind Parkway, Fakeville, ZZ 00001",
        department="Northwind Radiology East",
        station_name="NWGH-CTSTN01",
        referring=("ZZDOCTOR^Hannelore^Brightwater", "ZZDOCTOR^Ignatius^Pemberley"),
        operators=("ZZTECH^Marisol^Quenby",),
        acquisition=Acquisition(scale=1.0, offset=0.0, blur_sigma=0.5, noise_sd=8.0),
    ),
    Site(
        folder="site-2",
        external=False,
        manufacturer="Boreal Imaging",
        model_name="Orion 64",
        software_versions="Orion Recon 11.0",
        device_serial="BORSN-30918846",
        kvp=100.0,
        slice_thickness=2.5,
        pixel_spacing=0.78,
        convolution_kernel="BOR-STD",
        institution="Saint Elowen Memorial Clinic",
        address="48 Harborlight Avenue, Mocktown, ZZ 00002",
        department="Saint Elowen Imaging Suite",
        station_name="SEMC-CTSTN02",
        referring=("ZZDOCTOR^Cordelia^Wintermere", "ZZDOCTOR^Bartholomew^Ashgrove"),
        operators=("ZZTECH^Leontyne^Farrowby",),
        acquisition=Acquisition(scale=0.9, offset=15.0, blur_sigma=0.9, noise_sd=14.0),
    ),
    Site(
        folder="site-3",
        external=True,
        manufacturer="Cygnus Systems",
        model_name="Vega CT",
        software_versions="VegaSuite 2.7b",
        device_serial="CYGSN-55213309",
        kvp=140.0,
        slice_thickness=5.0,
        pixel_spacing=0.94,
        convolution_kernel="CYG-SMOOTH-S10",
        institution="Riverbend County Medical Center",
        address="905 Old Quarry Road, Pretendburg, ZZ 00003",
        department="Riverbend Diagnostic Imaging",
        station_name="RCMC-CTSTN03",
        referring=("ZZDOCTOR^Philomena^Crestwood", "ZZDOCTOR^Thaddeus^Oakenshaw"),
        operators=("ZZTECH^Rosalind^Haverbrook",),
        acquisition=Acquisition(scale=0.75, offset=35.0, blur_sigma=2.2, noise_sd=35.0),
    ),
)
