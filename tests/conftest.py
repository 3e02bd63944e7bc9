import os

# Acceptance tests must never reach a real cloud by accident through the developer's env.
for _var in [v for v in os.environ if v.startswith("OS_")]:
    os.environ.pop(_var)
