# The root file system is the slot U-Boot chose (boot.cmd.in adds root=), not a fixed
# partition in cmdline.txt.
CMDLINE_ROOTFS:charger = ""
