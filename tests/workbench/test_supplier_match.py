"""Supplier matching across systems (pure Python, no database)."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import iban as stdnum_iban
from stdnum.eu import vat as stdnum_vat
from stdnum.us import ein as stdnum_ein

from connectors.sandboxkit.procurement import build_p2p
from connectors.sandboxkit.world import build_world
from workbench.supplier_match import (
    CERTAIN,
    LIKELY,
    UNCERTAIN,
    Party,
    match_parties,
    normalize_iban,
    normalize_name,
    normalize_tax_id,
)

# --- tax ids ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, country, canonical",
    [
        ("DE 136 695 976", "", "DE136695976"),
        ("de136695976", "", "DE136695976"),
        ("136695976", "DE", "DE136695976"),
        ("136 695 976", "de", "DE136695976"),
        ("FR40303265045", "", "FR40303265045"),
        ("fr 40 303 265 045", "FR", "FR40303265045"),
        ("12-3456789", "US", "US123456789"),
        ("123456789", "US", "US123456789"),
        ("US 12-3456789", "", "US123456789"),
        ("SE556677889901", "", "SE556677889901"),
        ("NL853746333B01", "", "NL853746333B01"),
        ("NL8200.98.395.B.01", "NL", "NL820098395B01"),
        ("GB980780684", "", "GB980780684"),  # not an EU VAT id any more: stdnum.gb.vat
        ("980 7806 84", "GB", "GB980780684"),
        ("CHE-116.281.710 MWST", "", "CHE116281710"),
        ("CHE-116.281.710", "CH", "CHE116281710"),
        ("NO 995 525 828 MVA", "", "NO995525828MVA"),
        ("995525828", "NO", "NO995525828MVA"),
        ("GR094014201", "", "EL094014201"),
        ("094014201", "GR", "EL094014201"),
        ("IT01598570354", "", "IT01598570354"),  # PEPPOL fixtures
        ("HR46830600751", "", "HR46830600751"),
        ("11.222.333/0001-81", "BR", "BR11222333000181"),  # a stdnum module outside Europe (CNPJ)
    ],
)
def test_valid_tax_ids(value, country, canonical):
    assert normalize_tax_id(value, country) == (canonical, True)


@pytest.mark.parametrize(
    "value, country, canonical",
    [
        ("DE 123 456 789", "", "DE123456789"),  # bad check digit
        ("DE136695977", "", "DE136695977"),
        ("FR41303265045", "", "FR41303265045"),
        ("07-3456789", "US", "US073456789"),  # EIN prefix 07 is not assigned
        ("12-3456789", "", "123456789"),  # no country, no prefix: cannot be validated
        ("A-77/1", "ZA", "ZAA771"),  # no stdnum module: cleaned, never valid
        ("", "DE", ""),
    ],
)
def test_invalid_tax_ids(value, country, canonical):
    assert normalize_tax_id(value, country) == (canonical, False)


def test_prefix_wins_over_country():
    # a German supplier with a French VAT registration
    assert normalize_tax_id("FR40303265045", "DE") == ("FR40303265045", True)


# --- IBAN -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "DE89370400440532013000",
        "de89 3704 0044 0532 0130 00",
        "IBAN DE89-3704-0044-0532-0130-00",
        " De89370400440532013000\n",
    ],
)
def test_iban_variants(value):
    assert normalize_iban(value) == ("DE89370400440532013000", True)


def test_invalid_iban():
    assert normalize_iban("DE88 3704 0044 0532 0130 00") == ("DE88370400440532013000", False)
    assert normalize_iban("") == ("", False)


# --- names ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("Contoso Hardware LLC", "CONTOSO HARDWARE, L.L.C."),
        ("Contoso Hardware LLC", "contoso  hardware"),
        ("Adatum Gebäudeservice GmbH", "Adatum Gebaeudeservice GmbH"),
        ("Adatum Gebäudeservice GmbH", "ADATUM GEBAUDESERVICE"),
        ("Wingtip Büromöbel KG", "Wingtip Bueromoebel"),
        ("Tailspin Événements SAS", "TAILSPIN EVENEMENTS S.A.S."),
        ("Adatum Services Généraux", "Adatum Services Generaux SARL"),
        ("Fabrikam Beratung AG", "Fabrikam Beratung"),
        ("Litware Software Corp.", "Litware Software Corporation"),
        ("Kontoso Technik GmbH & Co. KG", "Kontoso Technik"),
        ("Fiat S.p.A.", "FIAT SPA"),
        ("Proseware B.V.", "Proseware BV"),
        ("Proseware N.V.", "Proseware"),
        ("AB Volvo", "Volvo AB"),
        ("Nokia Oyj", "Nokia"),
        ("Grosse Strasse Ltd", "Große Straße Limited"),
        ("Smith & Sons Inc.", "Smith and Sons"),
        ("Litware Logiciels S. A.", "Litware Logiciels"),
    ],
)
def test_equal_names(a, b):
    assert normalize_name(a) == normalize_name(b)
    assert normalize_name(a)


@pytest.mark.parametrize(
    "a, b",
    [
        ("Contoso Hardware LLC", "Kontoso Technik GmbH"),
        ("Contoso Hardware LLC", "Contoso Software LLC"),
        ("Fabrikam Consulting Inc.", "Fabrikam Beratung AG"),
    ],
)
def test_different_names(a, b):
    assert normalize_name(a) != normalize_name(b)


def test_name_key_examples():
    assert normalize_name("CONTOSO HARDWARE, L.L.C.") == "contoso hardware"
    assert normalize_name("Adatum Gebäudeservice GmbH") == "adatum gebaudeservice"
    assert normalize_name("GmbH") == ""
    assert normalize_name("") == ""


# --- matching examples ------------------------------------------------------------------------------------------


def one(left: Party, right: Party):
    matches = match_parties([left], [right])
    assert len(matches) <= 1
    return matches[0] if matches else None


def test_same_vat_typed_differently_is_certain():
    m = one(
        Party("V1", "Kontoso Technik GmbH", "DE", "DE 136 695 976"), Party(4001, "KONTOSO TECHNIK", "de", "de136695976")
    )
    assert (m.left, m.right, m.certainty) == ("V1", 4001, CERTAIN)
    assert "same VAT id DE136695976" in m.reasons
    assert "names equal after normalization: kontoso technik" in m.reasons
    assert m.score == 0.95


def test_vat_without_prefix_with_country():
    m = one(Party("V1", "A", "DE", "136695976"), Party("X", "B", "", "DE136695976"))
    assert m.certainty == CERTAIN


def test_us_ein_with_and_without_dash():
    m = one(
        Party("V1", "Contoso Hardware LLC", "US", "12-3456789"),
        Party("C1", "CONTOSO HARDWARE, L.L.C.", "US", "123456789"),
    )
    assert m.certainty == CERTAIN
    assert "same EIN US123456789" in m.reasons
    assert m.score == 0.95


def test_same_iban_is_certain():
    m = one(
        Party("V1", "Adatum Gebäudeservice GmbH", "DE", iban="DE89 3704 0044 0532 0130 00"),
        Party("P9", "Something Else", "", iban="de89370400440532013000"),
    )
    assert m.certainty == CERTAIN
    assert "same IBAN DE89370400440532013000" in m.reasons


def test_same_iban_conflicting_tax_ids_is_uncertain():
    m = one(
        Party("V1", "Adatum", "DE", "DE136695976", "DE89370400440532013000"),
        Party("V2", "Fabrikam", "FR", "FR40303265045", "DE89370400440532013000"),
    )
    assert m.certainty == UNCERTAIN
    assert any(r.startswith("conflicting tax ids") for r in m.reasons)


def test_invalid_vat_never_certain():
    # bad check digit on both sides, same name, same country: at most likely
    m = one(Party("V1", "Contoso GmbH", "DE", "DE 123 456 789"), Party("C1", "Contoso GmbH", "DE", "de123456789"))
    assert m.certainty == LIKELY
    assert "same tax id DE123456789, but not valid per stdnum" in m.reasons
    # only the invalid tax id in common: a candidate, nothing more
    m = one(Party("V1", "Contoso GmbH", "DE", "DE123456789"), Party("C1", "Fabrikam AG", "DE", "DE123456789"))
    assert m.certainty == UNCERTAIN
    # and an invalid IBAN neither
    m = one(
        Party("V1", "Contoso", iban="DE88370400440532013000"), Party("C1", "Fabrikam", iban="DE88370400440532013000")
    )
    assert m.certainty == UNCERTAIN


def test_similar_names_different_valid_vat_not_certain():
    left = Party("V1", "Contoso Technik GmbH", "DE", "DE136695976")
    right = Party("C1", "Kontoso Technik GmbH", "DE", "DE132882398")
    assert one(left, right) is None
    right = Party("C1", "Contoso Technik GmbH", "DE", "DE132882398")  # even with the same name
    m = one(left, right)
    assert m.certainty == UNCERTAIN
    assert "conflicting tax ids: DE136695976 vs DE132882398" in m.reasons


def test_equal_names_same_country_likely():
    m = one(Party("V1", "Contoso Hardware LLC", "US"), Party("C1", "CONTOSO HARDWARE, L.L.C.", "US"))
    assert m.certainty == LIKELY and m.score == 0.8
    assert "names equal after normalization: contoso hardware" in m.reasons
    m = one(Party("V1", "Contoso Hardware LLC", "US"), Party("C1", "Contoso Hardware", ""))
    assert m.certainty == LIKELY and m.score == 0.7
    m = one(Party("V1", "Contoso Hardware LLC", "US"), Party("C1", "Contoso Hardware GmbH", "DE"))
    assert m.certainty == UNCERTAIN
    assert "countries differ: US vs DE" in m.reasons


def test_similar_names_uncertain():
    m = one(Party("V1", "Kontoso Technik GmbH", "DE"), Party("C1", "Contoso Technik", "DE"))
    assert m.certainty == UNCERTAIN
    assert any(r.startswith("names similar") for r in m.reasons)
    m = one(Party("V1", "Hardware Contoso"), Party("C1", "Contoso Hardware LLC"))
    assert m.certainty == UNCERTAIN
    assert "same words in names: hardware contoso ~ contoso hardware" in m.reasons
    assert one(Party("V1", "Kontoso Technik", "DE"), Party("C1", "Contoso Technik", "FR")) is None
    assert one(Party("V1", "Contoso Hardware"), Party("C1", "Fabrikam Consulting")) is None


def test_best_match_wins_and_rights_are_not_reused():
    left = [Party("L1", "Contoso Hardware", "US"), Party("L2", "Contoso Hardware LLC", "US", "12-3456789")]
    right = [Party("R1", "CONTOSO HARDWARE INC", "US", "123456789")]
    matches = match_parties(left, right)
    assert [(m.left, m.right, m.certainty) for m in matches] == [("L2", "R1", CERTAIN)]


def test_peppol_sender_against_vendor_master():
    vendors = [
        Party("V1", "Adatum Gebäudeservice GmbH", "DE", "DE136695976", "DE89 3704 0044 0532 0130 00"),
        Party("V2", "Litware Logiciels SA", "FR", "FR40303265045"),
        Party("V3", "Proseware AB", "SE", "SE556677889901"),
    ]
    senders = [
        Party("0007:5566778899", "PROSEWARE", "SE", "se 5566778899 01"),
        Party("0088:4000000000001", "Litware Logiciels", "FR", "fr40303265045"),
        Party("9930:DE136695976", "Adatum Gebaeudeservice GmbH", "", "DE136695976"),
    ]
    got = {(m.left, m.right, m.certainty) for m in match_parties(vendors, senders)}
    assert got == {
        ("V1", "9930:DE136695976", CERTAIN),
        ("V2", "0088:4000000000001", CERTAIN),
        ("V3", "0007:5566778899", CERTAIN),
    }


# --- the demo world ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_suppliers():
    return build_p2p(build_world(seed=7, today=date(2026, 11, 20), n_employees=40, n_lines=0)).suppliers


def stdnum_valid_tax_id(s) -> bool:
    return stdnum_ein.is_valid(s.tax_id) if s.country == "US" else stdnum_vat.is_valid(s.tax_id)


def test_demo_suppliers_have_valid_ids(demo_suppliers):
    bad = [
        s.number for s in demo_suppliers if not stdnum_valid_tax_id(s) or (s.iban and not stdnum_iban.is_valid(s.iban))
    ]
    assert bad == []


def test_demo_ids_agree_with_stdnum(demo_suppliers):
    for s in demo_suppliers:
        assert normalize_tax_id(s.tax_id, s.country)[1] == stdnum_valid_tax_id(s), s
        if s.iban:
            assert normalize_iban(s.iban)[1] == stdnum_iban.is_valid(s.iban), s
    assert sum(stdnum_valid_tax_id(s) for s in demo_suppliers) >= len(demo_suppliers) - 3


def retyped(s) -> Party:
    """The same supplier as another system has it: spaces, lower case, no legal form."""
    tax = s.tax_id.lower()
    tax = " ".join(tax[i : i + 3] for i in range(0, len(tax), 3))
    iban = " ".join(s.iban[i : i + 4] for i in range(0, len(s.iban), 4)).lower()
    name = s.name.upper().replace("Ä", "AE").replace("Ü", "UE").replace("Ö", "OE")
    for form in (" GMBH", " LLC", " INC.", " CORP.", " CO.", " AG", " KG", " SAS", " SARL", " SA"):
        name = name.removesuffix(form)
    return Party(("coupa", s.coupa_id), "  " + name.replace(" ", "  ") + " ", s.country.lower(), tax, iban)


def test_demo_suppliers_match_their_retyped_copies(demo_suppliers):
    left = [Party(s.number, s.name, s.country, s.tax_id, s.iban) for s in demo_suppliers]
    right = [retyped(s) for s in reversed(demo_suppliers)]
    matches = match_parties(left, right)
    by_left = {m.left: m for m in matches}
    assert len(matches) == len(demo_suppliers)
    for s in demo_suppliers:
        m = by_left[s.number]
        assert m.right == ("coupa", s.coupa_id)
        has_valid_id = stdnum_valid_tax_id(s) or (bool(s.iban) and stdnum_iban.is_valid(s.iban))
        assert m.certainty == (CERTAIN if has_valid_id else LIKELY), m
        assert f"names equal after normalization: {normalize_name(s.name)}" in m.reasons


# --- properties -------------------------------------------------------------------------------------------------

COUNTRIES = st.sampled_from(
    [
        "",
        "DE",
        "de",
        "FR",
        "US",
        "GB",
        "CH",
        "NO",
        "SE",
        "NL",
        "GR",
        "EL",
        "IT",
        "BR",
        "AU",
        "MX",
        "ZA",
        "XX",
        "Germany",
    ]
)
VALID_TAX_IDS = [
    "DE136695976",
    "DE132882398",
    "FR40303265045",
    "12-3456789",
    "SE556677889901",
    "NL853746333B01",
    "GB980780684",
    "CHE-116.281.710 MWST",
    "NO 995 525 828 MVA",
    "IT01598570354",
    "EL094014201",
    "BE0000000196",
    "HR46830600751",
]
VALID_IBANS = [
    "DE89370400440532013000",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "DE19370400440000000009",
    "CH9300762011623852957",
]
LEGAL = [
    "GmbH",
    "AG",
    "KG",
    "SAS",
    "SARL",
    "SA",
    "S.A.",
    "LLC",
    "L.L.C.",
    "Inc",
    "Inc.",
    "Corp",
    "Ltd",
    "BV",
    "N.V.",
    "AB",
    "Oy",
    "S.p.A.",
    "GmbH & Co. KG",
    "Limited",
    "plc",
    "A/S",
]
WORDS = [
    "contoso",
    "kontoso",
    "hardware",
    "technik",
    "fabrikam",
    "beratung",
    "adatum",
    "gebäudeservice",
    "gebaeudeservice",
    "litware",
    "logiciels",
    "tailspin",
    "événements",
    "wingtip",
    "büromöbel",
    "proseware",
    "services",
    "généraux",
    "alpine",
    "ski",
    "house",
    "A",
    "B",
    "co",
    "the",
    "und",
]

typed_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
code_like = st.text(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefz -./_ÄÉß"), max_size=20)
tax_ids = st.one_of(
    st.sampled_from(VALID_TAX_IDS), code_like, typed_text, st.sampled_from(VALID_TAX_IDS).map(str.lower)
)
names = st.one_of(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.builds(
        lambda ws, f: " ".join(ws) + " " + f,
        st.lists(st.sampled_from(WORDS), min_size=1, max_size=3),
        st.sampled_from(LEGAL),
    ),
    typed_text,
)


@settings(max_examples=400)
@given(tax_ids, COUNTRIES)
def test_normalize_tax_id_idempotent(value, country):
    canonical, valid = normalize_tax_id(value, country)
    assert normalize_tax_id(canonical, country) == (canonical, valid)


@settings(max_examples=300)
@given(st.one_of(st.sampled_from(VALID_IBANS), code_like, typed_text))
def test_normalize_iban_idempotent(value):
    canonical, valid = normalize_iban(value)
    assert normalize_iban(canonical) == (canonical, valid)


@settings(max_examples=400)
@given(names)
def test_normalize_name_idempotent(value):
    key = normalize_name(value)
    assert normalize_name(key) == key


@settings(max_examples=300)
@given(
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4),
    st.sampled_from(LEGAL),
    st.lists(st.sampled_from([" ", "  ", "\t", "\u00a0"]), min_size=5, max_size=5),
    st.data(),
)
def test_normalize_name_invariants(words, legal, spaces, data):
    name = " ".join(words)
    key = normalize_name(name)
    assert normalize_name(name.upper()) == key
    assert normalize_name(name.lower()) == key
    assert normalize_name(name.title()) == key
    assert normalize_name(spaces[0] + spaces[1].join(words) + spaces[2]) == key
    separator = data.draw(st.sampled_from([" ", ", ", " , ", "  "]))
    assert normalize_name(name + separator + legal) == key
    assert normalize_name(name + separator + legal.upper()) == key


@settings(max_examples=200)
@given(typed_text)
def test_normalize_name_case_invariant_on_any_text(value):
    assert normalize_name(value.upper()) == normalize_name(normalize_name(value).upper())
    assert normalize_name(value + "   ") == normalize_name(value)


parties = st.builds(
    Party,
    key=st.none(),  # replaced by a position below
    name=names,
    country=COUNTRIES,
    tax_id=st.one_of(st.just(""), tax_ids),
    iban=st.one_of(st.just(""), st.sampled_from(VALID_IBANS), code_like),
)


def keyed(items, prefix):
    return [Party(f"{prefix}{i}", p.name, p.country, p.tax_id, p.iban) for i, p in enumerate(items)]


@settings(max_examples=150, deadline=None)
@given(st.lists(parties, max_size=12), st.lists(parties, max_size=12))
def test_match_parties_shape_and_determinism(left, right):
    left, right = keyed(left, "L"), keyed(right, "R")
    matches = match_parties(left, right)
    assert matches == match_parties(list(left), list(right))
    lefts = [m.left for m in matches]
    rights = [m.right for m in matches]
    assert len(set(lefts)) == len(lefts)
    assert len(set(rights)) == len(rights)
    assert lefts == sorted(lefts, key=lambda k: int(k[1:]))  # left input order
    for m in matches:
        assert m.certainty in (CERTAIN, LIKELY, UNCERTAIN)
        assert 0 < m.score <= 1
        assert m.reasons
        band = {CERTAIN: (0.9, 1.0), LIKELY: (0.6, 0.89), UNCERTAIN: (0.3, 0.59)}[m.certainty]
        assert band[0] <= m.score <= band[1]


@settings(max_examples=150, deadline=None)
@given(st.lists(parties, max_size=12))
def test_list_matched_against_itself(items):
    left, right = keyed(items, "L"), keyed(items, "R")
    matches = {m.left: m for m in match_parties(left, right)}
    for i, p in enumerate(items):
        has_valid_id = normalize_tax_id(p.tax_id, p.country)[1] or normalize_iban(p.iban)[1]
        if has_valid_id:
            assert matches[f"L{i}"].right == f"R{i}"
            assert matches[f"L{i}"].certainty == CERTAIN
        elif normalize_name(p.name):
            assert matches[f"L{i}"].right == f"R{i}"


@settings(max_examples=100, deadline=None)
@given(st.lists(parties, min_size=1, max_size=10), st.randoms(use_true_random=False))
def test_valid_ids_match_certain_whatever_the_order(items, rnd):
    left = keyed(items, "L")
    right = keyed(items, "R")
    rnd.shuffle(right)
    matches = match_parties(left, right)
    for m in matches:
        p = items[int(m.left[1:])]
        if normalize_tax_id(p.tax_id, p.country)[1] or normalize_iban(p.iban)[1]:
            assert m.certainty == CERTAIN
