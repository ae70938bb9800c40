"""The app's settings as in a fresh clone where nobody ran `make setup`: the locale
folder (KOBOLDCHAT_TEST_LOCALE) holds the .po files and no compiled catalog."""

import os
from pathlib import Path

from koboldchat.settings import *  # noqa: F403

LOCALE_PATHS = [Path(os.environ["KOBOLDCHAT_TEST_LOCALE"])]
