"""`escalation chaos`: steady load, faults (kill -9, broker and database restarts, a failing receiver), invariants."""
