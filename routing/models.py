# Routing decisions and runs are added with the router (HyPER); the app is installed now so that
# its migrations start in order.
