"""A row's phone region from a country column: ISO codes and country names.

Exports carry each contact's country their own way: Mailchimp's ``CC`` and
Shopify's ``Default Address Country Code`` hold ISO codes (``GB``), Google,
Outlook, HubSpot and Salesforce hold whatever was typed (``United Kingdom``,
``UK``, ``Deutschland``, ``Royaume-Uni``, ``EE. UU.``). :func:`region_codes`
reads them all with pycountry's ISO 3166 data (alpha-2 and alpha-3 codes,
names, official and common names, and their German, French and Spanish
translations), plus the everyday names ISO does not list (``UK``,
``England``, ``USA``, ``Holland``, ``Russia``...) and calling codes
(``+44``). Only regions libphonenumber knows count; anything else is
``None`` (the caller falls back to ``default_region`` and says so).

Example:
    >>> import pandas as pd
    >>> cells = pd.Series(["gb", "Deutschland", "U.S.A.", "Royaume-Uni", "+44", "Narnia", None])
    >>> region_codes(cells).tolist()
    ['GB', 'DE', 'US', 'GB', 'GB', None, None]
"""

from __future__ import annotations

import gettext
import re
from functools import cache, lru_cache
from typing import Final

import numpy as np
import pandas as pd
import phonenumbers

from synckit._headers import header_key

__all__ = ["region_codes", "resolve"]

_LANGUAGES: Final = ("de", "fr", "es")

# Names people write that ISO 3166 does not list (English, German, French, Spanish).
_EVERYDAY: Final = {
    "GB": ("UK", "U.K.", "Great Britain", "Britain", "England", "Scotland", "Wales",
           "Northern Ireland", "Grossbritannien", "Großbritannien", "Angleterre",
           "Grande-Bretagne", "Royaume Uni", "Inglaterra", "Gran Bretaña", "Escocia", "Schottland"),
    "US": ("USA", "U.S.A.", "U.S.", "US of A", "America", "United States of America",
           "Vereinigte Staaten von Amerika", "Etats-Unis d'Amerique", "EE. UU.", "EEUU", "EUA",
           "Estados Unidos de America"),
    "RU": ("Russia", "Russland", "Rusia"),
    "NL": ("Holland", "Holanda", "Hollande"),
    "TR": ("Turkey", "Turkei", "Turquia"),
    "CZ": ("Czech Republic", "Tschechische Republik", "Republique tcheque", "Republica Checa"),
    "KR": ("Korea", "South Korea", "Südkorea", "Coree du Sud", "Corea del Sur"),
    "KP": ("North Korea", "Nordkorea", "Coree du Nord", "Corea del Norte"),
    "CI": ("Ivory Coast", "Elfenbeinkuste", "Cote d'Ivoire"),
    "MK": ("Macedonia", "Mazedonien", "Macedoine"),
    "SZ": ("Swaziland",),
    "MM": ("Burma",),
    "VA": ("Vatican", "Vatican City", "Vatikan"),
    "AE": ("UAE", "U.A.E.", "Emirates", "VAE", "EAU"),
    "CN": ("PRC", "Mainland China"),
    "TW": ("Taiwan", "ROC"),
    "IR": ("Iran", "Persia"),
    "SY": ("Syria", "Syrien", "Siria"),
    "LA": ("Laos",),
    "MD": ("Moldova", "Moldawien"),
    "TZ": ("Tanzania", "Tansania"),
    "VN": ("Vietnam",),
    "BO": ("Bolivia", "Bolivien"),
    "VE": ("Venezuela",),
    "VG": ("British Virgin Islands",),
    "VI": ("US Virgin Islands", "U.S. Virgin Islands"),
    "XK": ("Kosovo",),  # not in ISO 3166 yet; libphonenumber has it
}  # fmt: skip


def _key(text: object) -> str:
    return header_key(text).replace(" ", "")


@cache
def _index() -> dict[str, str]:
    import pycountry

    translations = [
        gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=[lang], fallback=True)
        for lang in _LANGUAGES
    ]
    names: dict[str, set[str]] = {}  # key -> regions (a key two regions share is dropped)

    def add(text: str | None, code: str) -> None:
        if text:
            names.setdefault(_key(text), set()).add(code)

    for country in pycountry.countries:
        code = country.alpha_2
        variants = [
            getattr(country, attr, None) for attr in ("name", "official_name", "common_name")
        ]
        for text in [v for v in variants if v]:
            for said in (text, *(t.gettext(text) for t in translations)):
                add(said, code)
                # "Korea, Republic of" -> "Republic of Korea" and "Korea" (if no other has it)
                head, comma, tail = said.partition(", ")
                if comma:
                    add(f"{tail} {head}", code)
                    add(head, code)
    out = {k: next(iter(v)) for k, v in names.items() if len(v) == 1}
    for country in pycountry.countries:
        out[_key(country.alpha_2)] = country.alpha_2
        out[_key(country.alpha_3)] = country.alpha_2
    for code, texts in _EVERYDAY.items():
        for text in texts:
            out[_key(text)] = code
    return out


_CALLING_CODE: Final = re.compile(r"\+?\s*(\d{1,3})")


@lru_cache(maxsize=4096)
def resolve(text: str) -> str | None:
    """The libphonenumber region for one country cell, or ``None``.

    Example:
        >>> resolve("España"), resolve("Vereinigtes Königreich"), resolve("GBR"), resolve("Narnia")
        ('ES', 'GB', 'GB', None)
    """
    stripped = text.strip()
    if not stripped:
        return None
    calling = _CALLING_CODE.fullmatch(stripped)
    if calling:
        region = phonenumbers.region_code_for_country_code(int(calling.group(1)))
        return None if region in (None, "ZZ", "001") else region
    code = _index().get(_key(stripped))
    return code if code in phonenumbers.SUPPORTED_REGIONS else None


def region_codes(values: pd.Series) -> pd.Series:
    """:func:`resolve` for each cell (missing stays missing), each distinct value once."""
    codes, uniques = pd.factorize(values)
    found = np.array([resolve(str(u)) for u in uniques] + [None], dtype=object)
    return pd.Series(found[codes], index=values.index, dtype=object)
