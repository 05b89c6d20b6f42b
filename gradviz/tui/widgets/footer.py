"""A footer that shows whole keys only: those that do not fit are left out, never cut."""

from __future__ import annotations

from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class WholeKeysFooter(Footer):
    """Textual's Footer, keeping the keys (in binding order) that fit beside the palette key.

    Textual's own footer cuts the key that reaches the palette key's border or the screen's
    edge (the dashboard's `end late▏^p palette` at 80 columns); here that key and those after
    it are left out whole. The screens using it list every key under `?`.
    """

    async def recompose(self) -> None:
        await super().recompose()
        self.call_after_refresh(self.fit_keys)

    def on_resize(self) -> None:
        self.call_after_refresh(self.fit_keys)

    def fit_keys(self) -> None:
        """Show the keys that fit whole, in order, and hide the first that does not and all after."""
        keys = [key for key in self.query(FooterKey) if not key.has_class("-command-palette")]
        palette = [key for key in self.query(FooterKey) if key.has_class("-command-palette")]
        room = self.size.width - sum(_width(key) + 2 for key in palette)  # its border and padding
        used, fits = 0, True
        for key in keys:
            used += _width(key) + key.styles.margin.right
            fits = fits and used <= room
            key.display = fits


def _width(key: FooterKey) -> int:
    """The cells a footer key's text takes (its key, description and their padding)."""
    return key.render().cell_len
