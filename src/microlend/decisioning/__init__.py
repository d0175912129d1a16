"""Decision engine (决策中台): credit policies as data, automatic decisions with reasons, and simulation.

- `domain`: `DecisionInput` (application, customer, features, model result) and exact number handling.
- `policy`: policies as GoRules JDM documents run by zen-engine; golden tests embedded in each policy.
- `lint`: checks before a policy may be submitted; `cells`: decision-table cells as structured tests.
- `service`: versions (maker-checker publishing), `decide`, `replay`, champion/challenger and shadow runs.
- `columnar` and `simulate`: batch evaluation over whole tables, backtests and the HTML report.
- `limits`: limit review for existing borrowers (increase, keep, decrease, freeze) from a `limit_review` policy.
- `diff`: what changed between two policy versions; `reasons`: the reason catalogue (zh-CN and English).
"""
