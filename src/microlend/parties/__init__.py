"""Parties: the people and micro-enterprises a bank lends to.

- `tables`: customers and their consents.
- `kyc`: checks of mainland identifiers (resident ID, USCC, mobile).
- `customers`: create, read (masked unless revealed), list and update customers.
- `consents`: a borrower's authorisations (授权) for data queries and marketing.
- `queries`: read functions other modules call (views and frames, never rows).
"""
