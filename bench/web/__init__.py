"""The browser benchmark: its pages, the lazy baseline in JS, and the headless runner (browser.py)."""
