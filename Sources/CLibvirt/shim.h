#ifndef REHEARSAL_CLIBVIRT_SHIM_H
#define REHEARSAL_CLIBVIRT_SHIM_H
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#endif
