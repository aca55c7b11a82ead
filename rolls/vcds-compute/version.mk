# The vcds compute roll: the compute appliance of a virtual cluster.
ROLLNAME	= vcds-compute
VERSION		= 7.0
RELEASE		= 0
COLOR		= darkorange
