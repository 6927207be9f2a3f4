"""The Textual chat app. Imported only when the app runs, so `skillchat --help` never pays for Textual."""
