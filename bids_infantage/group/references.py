"""The references of the group level, cited in the bias-correction JSON and the group report.

Key -> citation (authors, title, journal, year, DOI), in the order the report lists them.
"""
from __future__ import annotations

REFERENCES = {
    "smith2019": (
        "Smith SM, Vidaurre D, Alfaro-Almagro F, Nichols TE, Miller KL. Estimation of brain "
        "age delta from brain imaging. NeuroImage 2019;200:528-539. "
        "doi:10.1016/j.neuroimage.2019.06.017"
    ),
    "delange2020": (
        "de Lange AMG, Cole JH. Commentary: Correction procedures in brain-age prediction. "
        "NeuroImage: Clinical 2020;26:102229. doi:10.1016/j.nicl.2020.102229"
    ),
    "blandaltman1986": (
        "Bland JM, Altman DG. Statistical methods for assessing agreement between two "
        "methods of clinical measurement. Lancet 1986;1(8476):307-310. "
        "doi:10.1016/S0140-6736(86)90837-8"
    ),
    "lairdware1982": (
        "Laird NM, Ware JH. Random-effects models for longitudinal data. Biometrics "
        "1982;38(4):963-974. doi:10.2307/2529876"
    ),
    "jacobsontruax1991": (
        "Jacobson NS, Truax P. Clinical significance: a statistical approach to defining "
        "meaningful change in psychotherapy research. J Consult Clin Psychol 1991;59(1):12-19. "
        "doi:10.1037/0022-006X.59.1.12"
    ),
}
