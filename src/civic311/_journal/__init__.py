"""The journal's storage: one interface (`store.JournalStore`) and its SQLite implementation.

Private: users meet the journal through `civic311.ledger.Ledger` and `civic311.outbox.Outbox`.
"""
