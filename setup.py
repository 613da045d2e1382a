"""wisp-shacira: compressed neural fields (SHACIRA) for images, videos and NeRF."""
from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="wisp-shacira",
    version="0.1.0",
    description="SHACIRA compressed hash grids for images, videos and radiance fields, "
                "with a real entropy-coded bitstream",
    long_description=Path(__file__).with_name("README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["wisp_shacira", "wisp_shacira.*"]),
    install_requires=[
        "torch>=2.1,<2.15",
        "numpy>=1.24",
        "constriction>=0.5,<0.6",  # tested: 0.5.0; verify_coder() checks exactness at run time
        "PyYAML>=6",
        "pypng>=0.20220715",
        "tqdm>=4.60",
        "imageio>=2.30",
        "Pillow>=10",
        "av>=11",
        "scikit-image>=0.21",
        "matplotlib>=3.7",
    ],
    extras_require={
        "exr": ["OpenEXR>=3.2"],
        "viewer": ["viser>=1.0"],
        "bench": ["imageio-ffmpeg>=0.4"],
        "tensorboard": ["tensorboard>=2.10"],
        "fast": ["numba>=0.58"],
        "fuzz": ["atheris>=2.3"],  # coverage-guided decoder fuzzing (bench/fuzz_atheris.py)
        "test": ["pytest>=7", "hypothesis>=6", "playwright>=1.40"],
    },
    entry_points={"console_scripts": ["wisp-shacira=wisp_shacira.cli.main:main"]},
)
