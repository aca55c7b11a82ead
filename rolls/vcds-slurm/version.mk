# The vcds Slurm roll: the batch scheduler of a virtual cluster (vc:scheduler slurm), from
# Debian's Slurm packages, configless, authenticated by the cluster's own munge key.
ROLLNAME	= vcds-slurm
VERSION		= 7.0
RELEASE		= 0
COLOR		= seagreen
