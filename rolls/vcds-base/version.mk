# The vcds base roll: the frontend of a virtual cluster and what every node shares, for the
# site's Debian-based busybox node image.
ROLLNAME	= vcds-base
VERSION		= 7.0
RELEASE		= 0
COLOR		= steelblue
