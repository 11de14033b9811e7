"""Text helpers shared by the stages: WordNet setup, the lexicon, stop words, label words."""
