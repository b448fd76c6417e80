"""Operator tools: the command line, doctor, plan, rehearse, verify, metrics and logs."""
