"""Pure parsers turning what monitoring systems already send into intake commands."""
