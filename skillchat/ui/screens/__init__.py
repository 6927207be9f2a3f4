"""Screens other than the chat are imported lazily: none of them is needed to show the first prompt."""

from __future__ import annotations


def all_screen_classes() -> list[type]:
    from skillchat.ui.screens.conversations import ConversationsScreen
    from skillchat.ui.screens.handbook import HandbookScreen
    from skillchat.ui.screens.help import HelpScreen
    from skillchat.ui.screens.relearn import RelearnScreen
    from skillchat.ui.screens.spend import SpendScreen

    return [ConversationsScreen, HandbookScreen, HelpScreen, RelearnScreen, SpendScreen]
