"""The pure escalation core: policy model, incident state and `decide`; no I/O, no clock."""
