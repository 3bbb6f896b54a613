"""Code every Yigongti service uses: settings, database, events, errors, money. No service logic."""
