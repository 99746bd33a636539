"""Cloud-neutral core of the backup / verify functions. Import-light on purpose."""

VERSION = "0.1.0"
