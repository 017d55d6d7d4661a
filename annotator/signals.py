"""The news the base app sends up. The apps above it (scoring, routing) and its own analytics
subscribe in their AppConfig.ready(); the base app never imports them.

`labels_committed`
    Sent once new or changed labels of a project have committed, after the writing
    transaction (never inside it: a receiver may queue work that reads them). Keyword
    arguments:

    - `project_id` (int): the project whose labels changed;
    - `new_labels` (int): how many labels were added (0 where labels only changed);
    - `origin` (str): who wrote them: `"annotator"` (a label submitted on the platform),
      `"judge"` (a judge run's chunk, or a reward model labelling its project) or `"import"`
      (an import);
    - `judge_name` (str): for origin `judge`, the judge whose labels they are; empty otherwise.

    Receivers today: the analytics refresh (annotator.analytics.receivers), the reward-model
    retrain counter (scoring.receivers) and the live router (routing.receivers). Receivers
    run through `send_robust`: one that fails is logged and does not undo the labels or stop
    the others.
"""

from django.dispatch import Signal

LABEL_ORIGINS = ("annotator", "judge", "import")

labels_committed = Signal()
