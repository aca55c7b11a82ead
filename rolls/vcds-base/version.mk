# The vcds base roll: the frontend of a virtual cluster and what every node shares, on the
# site's Debian (bookworm) nodes.
ROLLNAME	= vcds-base
VERSION		= 7.0
RELEASE		= 0
COLOR		= steelblue
