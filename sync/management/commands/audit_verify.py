"""Check the audit chain end to end and name the first broken row (exit 1), or print the head."""

from django.core.management.base import BaseCommand, CommandError

from workbench.services.audit import audit_seal_all, audit_verify


class Command(BaseCommand):
    help = "Verify the tamper-evident audit trail: every record's content, its link, and the rows it stands for."

    def add_arguments(self, parser):
        parser.add_argument("--no-seal", action="store_true", help="Verify only what is sealed; chain nothing new.")

    def handle(self, *args, **opts):
        if not opts["no_seal"]:
            audit_seal_all()
        verdict = audit_verify()
        for name in verdict.missing_guards:
            self.stderr.write(f"missing trigger: {name} (the database no longer refuses edits there)")
        if verdict.broken:
            raise CommandError(f"audit chain broken at {verdict.broken[0]} ({verdict.checked} records checked)")
        if verdict.missing_guards:
            raise CommandError("audit triggers missing; run migrate to reinstall them")
        self.stdout.write(
            f"audit chain intact: {verdict.checked} records, head #{verdict.head_seq} {verdict.head_hash}"
            + (f", {verdict.unsealed} not yet sealed" if verdict.unsealed else "")
        )
