"""HUB's six prompt languages, by the column names of its multilingual files; English first.

HUB's multilingual number is the mean over the five other languages (English is the target set itself).
"""

LANGUAGES = ("English", "Spanish", "French", "German", "Italian", "Portuguese")
NON_ENGLISH = LANGUAGES[1:]
