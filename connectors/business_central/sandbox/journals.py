"""General journals and the general ledger: how the sandbox books an accrual.

BC v2.0 ``journals`` (one batch per company, code ``ACCRUALS``, balanced by an accrued-liabilities
account), their ``journalLines`` (create, list, get, delete; dimensions inline as
``dimensionSetLines`` like the sandbox's purchase invoice lines, readable at
``journalLines({id})/dimensionSetLines``), the bound action ``journals({id})/Microsoft.NAV.post``
and the read-only ``generalLedgerEntries`` it produces.

Posting checks every line first (open period for its posting date, an existing, unblocked posting
account, the DEPARTMENT an expense account needs, existing unblocked dimension values) and books
nothing unless all pass; then each line becomes two entries, the line's account against the
journal's balancing account (a negative amount swaps debit and credit), and the journal is empty.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors.sandboxkit.kit import Request
from connectors.sandboxkit.world import stable_guid

from . import rules
from .odata import BcError
from .seed import DEPARTMENT, ZERO_GUID, stamp

JOURNAL_LINE_WRITABLE = {
    "lineNumber",
    "accountType",
    "accountId",
    "accountNumber",
    "postingDate",
    "documentNumber",
    "externalDocumentNumber",
    "amount",
    "description",
    "comment",
    "dimensionSetLines",
}
JOURNAL_LINE_FIELDS = (
    "id",
    "journalId",
    "journalDisplayName",
    "lineNumber",
    "accountType",
    "accountId",
    "accountNumber",
    "postingDate",
    "documentNumber",
    "externalDocumentNumber",
    "amount",
    "description",
    "comment",
    "taxCode",
    "balanceAccountType",
    "balancingAccountId",
    "balancingAccountNumber",
    "lastModifiedDateTime",
)
GL_ENTRY_FIELDS = (
    "id",
    "entryNumber",
    "postingDate",
    "documentNumber",
    "documentType",
    "accountId",
    "accountNumber",
    "description",
    "debitAmount",
    "creditAmount",
    "additionalCurrencyDebitAmount",
    "additionalCurrencyCreditAmount",
    "lastModifiedDateTime",
)
MAX_DOCUMENT_NO = 20  # Gen. Journal Line."Document No." is Code[20]
BLANK_DOCUMENT_TYPE = "_x0020_"  # how the API spells the enum's blank value


def _line_not_found(line_id: str) -> BcError:
    return BcError(
        404,
        "Internal_RecordNotFound",
        f"The Gen. Journal Line does not exist. Identification fields and values: Id='{{{line_id.upper()}}}'",
    )


class JournalsMixin:
    """Handlers mixed into BusinessCentralSandbox (it provides _company, _find, _rows, _save...)."""

    def _journal_routes(self, company: str, key: str) -> None:
        lines = company + r"/journals" + key + r"/journalLines"
        line = lines + r"\((?P<line>[^)]*)\)"
        self.route("GET", lines, self._list_journal_lines)
        self.route("POST", lines, self._create_journal_line)
        self.route("GET", line, self._get_journal_line)
        self.route("DELETE", line, self._delete_journal_line)
        self.route("GET", line + r"/dimensionSetLines", self._list_journal_line_dimensions)
        self.route("POST", company + r"/journals" + key + r"/Microsoft\.NAV\.post", self._post_journal)
        self._fields.setdefault("journalLines", set()).update(JOURNAL_LINE_FIELDS)
        self._fields.setdefault("generalLedgerEntries", set()).update(GL_ENTRY_FIELDS)

    def _journal_lines_of(self, journal: dict) -> list[dict]:
        rows, _ = self._rows("journalLines", journal["_company"])
        return [ln for ln in rows if ln["journalId"] == journal["id"]]

    def _list_journal_lines(self, req: Request):
        company = self._company(req)
        journal = self._find("journals", company["id"], req.match["key"])
        rows, keys = self._rows("journalLines", company["id"])
        return self._collection(
            req,
            rows,
            keys,
            "journalLines",
            f"companies({company['id']})/journals({journal['id']})/journalLines",
            extra=lambda d: d["journalId"] == journal["id"],
        )

    def _journal_line(self, req: Request) -> tuple[dict, dict, dict]:
        company = self._company(req)
        journal = self._find("journals", company["id"], req.match["key"])
        line_id = self._guid(req.match["line"])
        line = self._docs.get(("journalLines", company["id"]), {}).get(line_id)
        if line is None or line["journalId"] != journal["id"]:
            raise _line_not_found(line_id)
        return company, journal, line

    def _get_journal_line(self, req: Request):
        company, journal, line = self._journal_line(req)
        context = f"companies({company['id']})/journals({journal['id']})/journalLines/$entity"
        return {"@odata.context": self._context(req, context), **self._public(line)}

    def _list_journal_line_dimensions(self, req: Request):
        _, _, line = self._journal_line(req)
        return {"@odata.context": self._context(req, "dimensionSetLines"), "value": list(line["_dims"])}

    def _delete_journal_line(self, req: Request):
        with self.lock:
            _, _, line = self._journal_line(req)
            self._remove("journalLines", line)
            self.store.db.commit()
            self.count("journalLines.deleted")
        return 204, b""

    def _create_journal_line(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            journal = self._find("journals", cid, req.match["key"])
            ledger = self._ledger(cid)
            try:
                data = _validate_line(req.json(), ledger, today=self.today.isoformat())
            except BcError:
                self.count("journalLines.rejected")
                raise
            existing = self._journal_lines_of(journal)
            number = data["lineNumber"] or (max((ln["lineNumber"] for ln in existing), default=0) + 10000)
            if any(ln["lineNumber"] == number for ln in existing):
                raise BcError(
                    400,
                    "Internal_EntityWithSameKeyExists",
                    "The Gen. Journal Line already exists. Identification fields and values: "
                    f"Journal Template Name='GENERAL',Journal Batch Name='{journal['code']}',Line No.='{number}'",
                )
            company_doc = self._docs[("companies", "")][cid]  # fresh, as in _create_invoice
            seq = company_doc.get("_seqJournalLine", 0) + 1
            self._save("companies", {**company_doc, "_seqJournalLine": seq})
            line_id = stable_guid("bc", self.seed, "journalLine", cid, seq)
            account = data["account"]
            doc = {
                "id": line_id,
                "journalId": journal["id"],
                "journalDisplayName": journal["displayName"],
                "lineNumber": number,
                "accountType": "G/L Account",
                "accountId": account["id"],
                "accountNumber": account["number"],
                "postingDate": data["postingDate"],
                "documentNumber": data["documentNumber"],
                "externalDocumentNumber": data["externalDocumentNumber"],
                "amount": data["amount"],
                "description": data["description"],
                "comment": data["comment"],
                "taxCode": "",
                "balanceAccountType": "G/L Account",
                "balancingAccountId": journal["balancingAccountId"],
                "balancingAccountNumber": journal["balancingAccountNumber"],
                "_company": cid,
                "_dims": [
                    {
                        "id": ledger.dimensions[code]["id"],
                        "code": code,
                        "consolidationCode": "",
                        "parentId": line_id,
                        "parentType": "Journal Line",
                        "displayName": ledger.dimensions[code]["displayName"],
                        "valueId": (ledger.dim_values.get((code, value)) or {}).get("id", ZERO_GUID),
                        "valueCode": value,
                        "valueConsolidationCode": "",
                        "valueDisplayName": (ledger.dim_values.get((code, value)) or {}).get("displayName", ""),
                    }
                    for code, value in data["dims"]
                ],
            }
            self._save("journalLines", stamp(doc, self.clock.now()))
            self.count("journalLines.created")
        context = f"companies({cid})/journals({journal['id']})/journalLines/$entity"
        location = f"http://{req.headers.get('Host', 'localhost')}{req.path}({line_id})"
        return 201, {"@odata.context": self._context(req, context), **self._public(doc)}, {"Location": location}

    def _post_journal(self, req: Request):
        company = self._company(req)
        cid = company["id"]
        with self.lock:
            journal = self._find("journals", cid, req.match["key"])
            lines = sorted(self._journal_lines_of(journal), key=lambda ln: ln["lineNumber"])
            ledger = self._ledger(cid)
            try:
                balancing = _check_postable(journal, lines, ledger)
            except BcError:
                self.count("journals.rejected")
                raise
            company_doc = self._docs[("companies", "")][cid]
            entry = company_doc.get("_seqGlEntry", 0)
            for ln in lines:
                amount = Decimal(str(ln["amount"]))
                if amount == 0:
                    continue
                for account, debit in ((ledger.accounts[ln["accountNumber"]], amount), (balancing, -amount)):
                    entry += 1
                    self._save(
                        "generalLedgerEntries",
                        stamp(
                            {
                                "id": stable_guid("bc", self.seed, "glEntry", cid, entry),
                                "entryNumber": entry,
                                "postingDate": ln["postingDate"],
                                "documentNumber": ln["documentNumber"],
                                "documentType": BLANK_DOCUMENT_TYPE,
                                "accountId": account["id"],
                                "accountNumber": account["number"],
                                "description": ln["description"],
                                "debitAmount": max(debit, Decimal(0)),
                                "creditAmount": max(-debit, Decimal(0)),
                                "additionalCurrencyDebitAmount": 0,
                                "additionalCurrencyCreditAmount": 0,
                                "_company": cid,
                                "_dims": [(d["code"], d["valueCode"]) for d in ln["_dims"]],
                            },
                            self.clock.now(),
                        ),
                    )
            self._save("companies", {**company_doc, "_seqGlEntry": entry})
            with self.store.lock:
                for ln in lines:
                    self._remove("journalLines", ln)
                self.store.db.commit()
            self.count("journals.posted")
        return 204, b""

    @staticmethod
    def _public(doc: dict) -> dict:
        out = {"@odata.etag": doc["@odata.etag"]} if "@odata.etag" in doc else {}
        out.update((k, v) for k, v in doc.items() if not k.startswith("_") and k != "@odata.etag")
        return out


def _validate_line(body: Any, ledger: rules.Ledger, *, today: str) -> dict:
    """Check a journalLines insert: table relations now (BC validates fields on insert), state on post."""
    if not isinstance(body, dict):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for key in body:
        if key not in JOURNAL_LINE_WRITABLE and not key.startswith("@odata"):
            if key in JOURNAL_LINE_FIELDS:
                raise BcError(400, "BadRequest_InvalidOperation", f"Control '{key}' is read-only.")
            raise rules.unknown_property(key, "journalLine")
    if (body.get("accountType") or "G/L Account") != "G/L Account":
        raise rules.dialog(f"Account type {body['accountType']} is not supported in this journal. Use G/L Account.")
    number, account_id = body.get("accountNumber"), body.get("accountId")
    account = None
    if number:
        account = ledger.accounts.get(str(number))
    elif account_id:
        account = next((a for a in ledger.accounts.values() if a["id"] == str(account_id).lower()), None)
    if account is None:
        raise rules.relation("Account No.", "Gen. Journal Line", number or account_id or "", "G/L Account")
    line_number = body.get("lineNumber")
    if line_number is not None and (isinstance(line_number, bool) or not isinstance(line_number, int)):
        raise BcError(
            400, "BadRequest", f"Cannot convert the literal '{line_number}' to the expected type 'Edm.Int32'."
        )
    dims: list[tuple[str, str]] = []
    raw_dims = body.get("dimensionSetLines") or []
    if not isinstance(raw_dims, list):
        raise BcError(400, "BadRequest", "Invalid Request Body")
    for dim in raw_dims:
        if not isinstance(dim, dict):
            raise BcError(400, "BadRequest", "Invalid Request Body")
        code, value = str(dim.get("code") or ""), str(dim.get("valueCode") or "")
        if code not in ledger.dimensions:
            raise BcError(
                404,
                "Internal_RecordNotFound",
                f"The Dimension does not exist. Identification fields and values: Code='{code}'",
            )
        if any(c == code for c, _ in dims):
            raise BcError(
                400,
                "Internal_EntityWithSameKeyExists",
                f"The Dimension Set Entry Buffer already exists. Identification fields and values: "
                f"Dimension Code='{code}'",
            )
        dims.append((code, rules.check_text(value, 20)))
    return {
        "lineNumber": line_number or 0,
        "account": account,
        "postingDate": rules.check_date(body.get("postingDate"), today),
        "documentNumber": rules.check_text(body.get("documentNumber"), MAX_DOCUMENT_NO),
        "externalDocumentNumber": rules.check_text(body.get("externalDocumentNumber"), 35),
        "amount": rules._decimal(body.get("amount"), Decimal(0)),
        "description": rules.check_text(body.get("description"), rules.MAX_DESCRIPTION),
        "comment": rules.check_text(body.get("comment"), 250),
        "dims": dims,
    }


def _check_postable(journal: dict, lines: list[dict], ledger: rules.Ledger) -> dict:
    """Raise BC's refusal if the journal must not be posted; returns the balancing account."""
    if not any(Decimal(str(ln["amount"])) != 0 for ln in lines):
        raise rules.dialog("There is nothing to post.")
    balancing = ledger.accounts.get(journal["balancingAccountNumber"])
    if balancing is None:
        raise rules.relation("Bal. Account No.", "Gen. Journal Line", journal["balancingAccountNumber"], "G/L Account")
    if balancing.get("blocked"):
        raise rules.blocked_account(balancing)
    for ln in lines:
        if not ln["documentNumber"]:
            raise BcError(
                400,
                "Application_FieldValidationException",
                f"Document No. must have a value in Gen. Journal Line: Journal Template Name=GENERAL, "
                f"Journal Batch Name={journal['code']}, Line No.={ln['lineNumber']}. It cannot be zero or empty.",
            )
        period = rules._period_of(ln["postingDate"], ledger.periods)
        if period is None or period["closed"] or period.get("dateLocked") is True:
            raise rules.dialog("Posting Date is not within your range of allowed posting dates.")
        account = ledger.accounts.get(ln["accountNumber"])
        if account is None:
            raise rules.relation("Account No.", "Gen. Journal Line", ln["accountNumber"], "G/L Account")
        if account.get("blocked"):
            raise rules.blocked_account(account)
        if account.get("accountType", "Posting") != "Posting":
            raise rules.dialog(f"Account Type must be equal to 'Posting' in G/L Account: No.={account['number']}.")
        codes = {d["code"]: d["valueCode"] for d in ln["_dims"]}
        if account.get("category") == "Expense" and not codes.get(DEPARTMENT):
            raise rules.dialog(
                f"Select a Dimension Value Code for the Dimension Code {DEPARTMENT} for G/L Account "
                f"{account['number']}."
            )
        for code, value in codes.items():
            rules._dimension_value(code, value, ledger)
    return balancing
