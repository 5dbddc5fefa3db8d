"""Partner Assistant: the daily Telegram companion of a referral-partner sales network."""
