from pathlib import Path

from setuptools import setup

here = Path(__file__).parent
requirements = [r for r in (here / "requirements.txt").read_text().splitlines() if r and not r.startswith("#")]

setup(
    name="tvts",
    version="0.1.0",
    description="Reference implementation of the TVTS family (TVTS, CVPR 2023; TVTSv2): transferable "
                "spatiotemporal representations from natural script knowledge",
    long_description=(here / "README.md").read_text(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=["model", "data_loader", "trainer", "downstream", "utils"],
    install_requires=requirements,
    extras_require={"test": ["pytest>=7"]},
)
