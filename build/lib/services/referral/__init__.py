"""Referral: two-way referrals (双向转诊), out-of-county approval, downward follow-up, and (later) slots."""
