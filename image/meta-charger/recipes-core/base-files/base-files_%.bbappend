# The A/B layout's fstab (wic/charger-ab.wks.in): the root file system is whichever slot
# U-Boot booted; /data is shared by both and keeps what must survive an update.
FILESEXTRAPATHS:prepend:charger := "${THISDIR}/files:"
