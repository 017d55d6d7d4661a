"""Dataset quality analytics: agreement, annotator competence, model leaderboard, distributions.

Statistics are pure functions over numpy arrays (agreement, competence, leaderboard); `arrays`
reads a project's labels into arrays, `report` builds the cached report and `plots` its figures.
"""
