"""Billing rules as plain Python (seed 004 §十七/十八, 000 §12): the service around them is the billing issue."""
