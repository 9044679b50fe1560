"""Mapping-rule patterns are matched by RE2 (linear in the value): a pattern that makes Python's
backtracking ``re`` run for ages cannot hang validation, and what RE2 cannot do is refused at save."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import ValidationError

from tests.factories import master_data
from tests.workbench.test_mappings import form_data, report, rule
from workbench.models import Document, MappingRule
from workbench.models.patterns import PatternError, compile_pattern
from workbench.rules.mapping_index import MappingIndex
from workbench.services.mappings import mapping_impact, mapping_rule_save

CATASTROPHIC = r"(a+)+$"  # Python's re takes ~2^n steps to refuse "a" * n + "b"


@pytest.mark.timeout(60)
def test_a_catastrophic_pattern_returns_at_once_through_the_mapping_index():
    index = MappingIndex(rules=[MappingRule(field="cost_center", pattern=CATASTROPHIC, target_value="SALES")])
    doc = Document(source_system="concur")
    assert index.find("cost_center", "a" * 50_000 + "b", doc, date(2026, 11, 10)) is None
    assert index.find("cost_center", "aaaa", doc, date(2026, 11, 10)).target_value == "SALES"


@pytest.mark.django_db
@pytest.mark.timeout(60)
def test_a_catastrophic_pattern_cannot_hang_the_preview_or_an_arriving_document(admin_user, jobs_sent):
    master_data()
    report(1, "a" * 39 + "b")  # the longest cost center a document holds (40)
    saved = rule(source_value="", pattern=CATASTROPHIC)
    assert mapping_impact(saved).items == 0
    mapping_rule_save(rule=saved, actor=admin_user)
    doc = report(2, "a" * 39 + "b")  # mapped on arrival: the saved pattern is tried against it
    assert doc.lines.get().cost_center == "a" * 39 + "b"


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        (r"(a)\1", r"backreferences such as \1 or (?P=name)"),
        (r"(?P<x>a)(?P=x)", "backreferences"),
        (r"SALE(?=S)", "lookahead and lookbehind"),
        (r"(?<!X)SALE", "lookahead and lookbehind"),
        (r"(?>SALE)", "atomic groups"),
        (r"SALE*+", "possessive quantifiers"),
    ],
)
def test_what_re2_cannot_do_is_named(pattern, words):
    with pytest.raises(PatternError) as info:
        compile_pattern(pattern)
    assert words in str(info.value) and "RE2" in str(info.value)


def test_escaped_backslashes_and_ordinary_patterns_are_fine():
    assert compile_pattern(r"\\1").fullmatch("\\1")
    assert compile_pattern(r"SALE|ENGG").fullmatch("ENGG") and not compile_pattern(r"SALE|ENGG").fullmatch("ENGGX")
    assert compile_pattern(r"(?P<dept>[A-Z]{4})-\d+").fullmatch("SALE-12")


@pytest.mark.django_db
def test_a_backreference_is_refused_at_save_with_the_reason(admin_user, jobs_sent):
    master_data()
    with pytest.raises(ValidationError) as info:
        mapping_rule_save(rule=rule(source_value="", pattern=r"(a)\1"), actor=admin_user)
    assert "backreferences such as \\1" in info.value.message_dict["pattern"][0]
    assert not MappingRule.objects.exists()


@pytest.mark.django_db
def test_the_mapping_form_says_which_feature_is_not_supported(client, admin_user, jobs_sent):
    master_data()
    client.force_login(admin_user)
    for url in ("/mappings/test/", "/mappings/save/"):
        html = client.post(url, form_data(source_value="", pattern=r"(a)\1"), HTTP_HX_REQUEST="true").content.decode()
        assert "Patterns cannot use backreferences" in html, url
    assert not MappingRule.objects.exists()


def test_a_rule_saved_before_re2_with_an_unsupported_pattern_matches_nothing():
    assert MappingRule(field="cost_center", pattern=r"(?=S)SALE", target_value="SALES").matches("SALE") is False
