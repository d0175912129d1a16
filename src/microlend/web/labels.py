"""Codes people read as words: audit actions, the kinds of objects they touch, industries and the attributes
a customer's onboarding asked for. Each table maps the code to its English msgid; the page translates it
through the catalogues. A code without a label is shown as it is (and the page walk in both languages finds
it)."""

from __future__ import annotations

import re

from microlend.web import i18n

AUDIT_ACTIONS: dict[str, str] = {
    "policy.publish": "Policy published",
    "policy.draft": "Policy saved as a draft",
    "policy.stop_challenger": "Challenger policy stopped",
    "bank_accounts.import": "Bank accounts imported",
    "job.run": "Scheduled job run",
    "decision.create": "Credit decision made",
    "application.approved": "Application approved by the policy",
    "application.declined": "Application declined by the policy",
    "application.referred": "Application referred to a person",
    "application.expired": "Application expired",
    "loan.disburse": "Loan paid out",
    "model.validated": "Model validated",
    "model.challenger": "Model made challenger",
    "model.retired": "Model retired",
    "model.draft": "Model back to draft",
    "application.accept": "Application accepted by the borrower",
    "application.approve": "Application approved",
    "application.decline": "Application declined",
    "application.disburse": "Loan disbursed",
    "application.recommend": "Application recommended",
    "application.submit": "Application submitted",
    "application.withdraw": "Application withdrawn",
    "behaviour_score.run": "Behaviour scoring run",
    "booking.approve": "Loan booking approved",
    "booking.create": "Loan booking entered",
    "booking.reject": "Loan booking rejected",
    "campaign.approve": "Campaign approved",
    "campaign.close": "Campaign closed",
    "campaign.create": "Campaign created",
    "campaign.journey_step.add": "Journey step added",
    "campaign.journey_step.advance": "Journey step advanced",
    "campaign.journey_step.stop": "Journey step stopped",
    "campaign.launch": "Campaign launched",
    "cob.run": "Close of business run",
    "collections.assign": "Collections case assigned",
    "collections.attachment": "Collections attachment added",
    "collections.blocked": "Collections contact blocked",
    "collections.close": "Collections case closed",
    "collections.escalate": "Collections case escalated",
    "collections.note": "Collections note",
    "collections.open": "Collections case opened",
    "collections.open_early": "Collections case opened early",
    "collections.promise": "Promise to pay recorded",
    "collections.promise_kept": "Promise to pay kept",
    "collections.reroute": "Collections case rerouted",
    "collections.settings": "Collections rules changed",
    "consent.give": "Consent given",
    "consent.revoke": "Consent revoked",
    "contract.sign": "Contract signed",
    "credit_settings.update": "Credit settings changed",
    "customer.create": "Customer created",
    "customer.link": "Related party linked",
    "customer.register": "Customer registered",
    "customer.reveal": "Personal data viewed in full",
    "customer.unlink": "Related party unlinked",
    "customer.update": "Customer updated",
    "data_provider.update": "Data provider changed",
    "data_refresh.run": "Data refresh run",
    "data_refresh_settings.update": "Data refresh settings changed",
    "dataset.import": "Dataset imported",
    "early_warning.scan": "Early-warning scan",
    "job.rerun_requested": "Job rerun requested",
    "limit_authority.update": "Approval authority changed",
    "limit_change.recommend": "Limit change recommended",
    "limit_change.refer": "Limit change referred",
    "limit_change.reject": "Limit change rejected",
    "loan.class_change": "Loan classification changed",
    "loan.import": "Loan imported",
    "marketing.contact_policy": "Contact policy changed",
    "marketing.events.load": "Marketing events loaded",
    "marketing.measurement_settings.update": "Measurement settings changed",
    "marketing.opt_in": "Marketing opt-in",
    "marketing.opt_out": "Marketing opt-out",
    "messaging.gateway": "Message gateway changed",
    "model.approved": "Model approved",
    "model.champion": "Model made champion",
    "model.gates": "Model gates changed",
    "model.monitoring_alert": "Model monitoring alert",
    "model.register": "Model registered",
    "otp.refuse": "Verification code refused",
    "otp.send": "Verification code sent",
    "outbox.dispatch": "Messages sent",
    "outbox.receipts": "Delivery receipts received",
    "outbox.reply": "Reply received",
    "policy.promote_to_test": "Policy moved to test",
    "policy.submit": "Policy submitted for approval",
    "preapproval.complete": "Pre-approval run finished",
    "preapproval.start": "Pre-approval run started",
    "product.create": "Product created",
    "product.update": "Product changed",
    "reason_code.update": "Reason code changed",
    "reminders.opt_in": "Reminders opt-in",
    "reminders.opt_out": "Reminders opt-out",
    "reminders.queue": "Reminders queued",
    "reminders.send": "Reminders sent",
    "reminders.settings": "Reminder settings changed",
    "restructure.reject": "Restructuring rejected",
    "restructure.request": "Restructuring requested",
    "segment.save": "Segment saved",
    "servicing.bad_loan_settings": "Bad-loan settings changed",
    "servicing.cob_engine": "Close-of-business engine changed",
    "servicing.nonaccrual": "Loan moved to non-accrual",
    "servicing.rate_cap": "Rate cap changed",
    "tenant.create": "Bank created",
    "user.create": "User created",
    "user.update": "User changed",
    "visit.create": "Visit recorded",
    "visit_task.close": "Visit task closed",
    "visit_task.sweep": "Visit tasks swept",
    "write_off.recovery": "Recovery after write-off",
    "write_off.recovery_reversal": "Recovery reversed",
    "write_off.reject": "Write-off rejected",
    "write_off.request": "Write-off requested",
}

OBJECT_TYPES: dict[str, str] = {
    "bank_accounts": "Bank accounts",
    "decision": "Decision",
    "application": "Application",
    "loan": "Loan",
    "customer": "Customer",
    "campaign": "Campaign",
    "case": "Case",
    "collections_case": "Collections case",
    "model": "Model",
    "model_version": "Model version",
    "policy": "Policy",
    "policy_version": "Policy version",
    "dataset": "Dataset",
    "segment": "Segment",
    "user": "User",
    "tenant": "Bank",
    "product": "Product",
    "job": "Job",
    "contract": "Contract",
    "consent": "Consent",
    "visit": "Visit",
    "visit_task": "Visit task",
    "write_off": "Write-off",
    "booking": "Loan booking",
    "preapproval_run": "Pre-approval run",
    "reason_code": "Reason code",
    "settings": "Settings",
    "cob_run": "Close of business",
    "outbox": "Messages",
    "credit_line": "Credit line",
    "limit_change": "Limit change",
    "restructure": "Restructuring",
    "otp": "Verification code",
    "behaviour_scores": "Behaviour scores",
    "business_date": "Business date",
    "collection_case": "Collections case",
    "contact_policy": "Contact policy",
    "credit_settings": "Credit settings",
    "data_provider": "Data provider",
    "data_refresh": "Data refresh",
    "data_refresh_settings": "Data refresh settings",
    "early_warning": "Early warning",
    "limit_authority": "Approval authority",
    "marketing_events": "Marketing events",
    "marketing_measurement_settings": "Measurement settings",
    "marketing_outbox": "Marketing messages",
    "marketing_visit_tasks": "Visit tasks",
    "message_gateway": "Message gateway",
    "reminder_outbox": "Reminder messages",
    "reminder_settings": "Reminder settings",
    "risk_settings": "Risk settings",
    "scheduled_job": "Scheduled job",
}

INDUSTRIES: dict[str, str] = {
    "retail": "Retail",
    "catering": "Catering",
    "agriculture": "Agriculture",
    "manufacturing": "Manufacturing",
    "transport": "Transport",
    "services": "Services",
    "wholesale": "Wholesale",
    "farming": "Farming",
    "repair": "Repair",
}

ATTRIBUTES: dict[str, str] = {
    "legal_form": "Legal form",
    "years_in_business": "Years in business",
    "annual_turnover": "Annual turnover",
    "employees": "Employees",
    "owner": "Owner",
    "owner_age": "Owner's age",
    "business_name": "Business name",
    "annual_income": "Annual income",
}

#: The figures a scheduled job reports, by their key.
JOB_FIGURES: dict[str, str] = {
    "audit_chain_ok": "Audit chain intact",
    "audit_records": "Audit records",
    "audit_verified": "Audit records verified now",
    "before_due": "Before the due date",
    "borrowers": "Borrowers",
    "bucket_changes": "Bucket changes",
    "business_date": "Business date",
    "cached": "From the cache",
    "calls": "Calls",
    "closed": "Closed",
    "cost": "Cost",
    "deferred": "Deferred",
    "due": "Due",
    "due_day": "On the due date",
    "escalated": "Escalated",
    "failed": "Failed",
    "fresh": "Still fresh",
    "interest_accrued": "Interest accrued",
    "loans": "Loans",
    "new_alerts": "New alerts",
    "newly_overdue": "Newly overdue",
    "overdue": "Overdue",
    "promises_broken": "Promises broken",
    "promises_kept": "Promises kept",
    "raised": "Raised",
    "refreshed": "Refreshed",
    "rule_version": "Rule version",
    "scheduled_at": "Scheduled at",
    "sent_deferred": "Sending deferred",
    "sent_failed": "Sending failed",
    "sent_sent": "Sent",
    "sent_suppressed": "Not sent (suppressed)",
    "skipped_no_consent": "Skipped: no consent",
    "stopped_by_budget": "Stopped by the budget",
    "subjects": "Subjects",
}

def label(table: dict[str, str], code: str | None, locale: str) -> str:
    """The code's label in `locale`; an unknown code as it is, a missing one as a dash."""
    if not code:
        return "—"
    msgid = table.get(code)
    return i18n.translations(locale).gettext(msgid) if msgid else code


#: Form fields as people name them, for messages about what they typed (never the field's code).
FIELDS: dict[str, str] = {
    "id_number": "ID number", "owner_id_number": "Owner's ID number", "mobile": "Mobile", "phone": "Mobile",
    "name": "Name", "amount": "Amount", "term_months": "Term", "password": "Password", "purpose": "Purpose",
    "product_code": "Product", "industry": "Industry", "annual_turnover": "Annual turnover",
    "years_in_business": "Years in business",
}
#: What is wrong, in words, for the checks a person's input can fail (matched on the service's message).
_EXPLAINED: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"check digit"), "The %(field)s is not valid (check digit)."),
    (re.compile(r"17 digits then"), "The %(field)s has 18 characters: 17 digits, then a digit or X."),
    (re.compile(r"birth date"), "The birth date in the %(field)s is not valid."),
    (re.compile(r"unified social credit code has"), "The %(field)s has 18 characters: digits and capital letters."),
    (re.compile(r"mobile number has 11 digits"), "A mobile number has 11 digits and starts with 13 to 19."),
]


def error_message(message: str, field: str | None, locale: str) -> str:
    """A service's message about one field as its reader should see it: the field by its name, what is wrong
    in words of the reader's language (a message the catalogue has is used as it is)."""
    t = i18n.translations(locale)
    whole = str(t.gettext(message))
    if whole != message or not field or not message.startswith(f"{field}: "):
        return whole
    detail = message[len(field) + 2:]
    name = str(t.gettext(FIELDS.get(field, "Value")))
    for pattern, msgid in _EXPLAINED:
        if pattern.search(detail):
            return str(t.gettext(msgid)) % {"field": name}
    said = str(t.gettext(detail))
    if locale != "en" and said == detail:  # no words for it in this language: say which field, not how
        return str(t.gettext("The %(field)s is not valid.")) % {"field": name}
    return f"{name}: {said}"


#: The memos the ledger writes itself (the entry's kind already says what they say); a memo of this shape
#: ending in ": <words>" carries a person's words (a write-off's reason), which are shown as they were typed.
_GENERATED_MEMOS = [re.compile(p) for p in (
    r"loan \d+ disbursed", r"[\w.]+ on loan \d+", r"interest accrued on loan \d+'s replaced schedule",
    r"penalty of loan \d+ recomputed(: (?P<words>.*))?", r"write-off of loan \d+(: (?P<words>.*))?",
    r"recovery on written-off loan \d+", r"loan-loss allowance as of [\d-]+", r"reversal of [\w.]+",
    r"\w+ of loan \d+", r"off-balance (interest|penalty) of non-accrual loans for [\d-]+",
    r"accrued interest and penalty of loans stopping accruing on [\d-]+ moved off-balance",
)]


def memo_words(memo: str | None) -> str:
    """What of a ledger memo a person should read next to the entry's label: nothing for a memo the ledger
    wrote itself, the reason a person typed, or a memo a person wrote, as it is."""
    for pattern in _GENERATED_MEMOS:
        found = pattern.fullmatch(memo or "")
        if found:
            return (found.groupdict().get("words") or "").strip()
    return memo or ""
