// powerlink: the device side of protocol v1 (docs/protocol.md), portable C++11, no Arduino,
// no heap. pl_device.h (BasicDevice) is the entry point; the other headers are its parts.
#ifndef POWERLINK_H
#define POWERLINK_H

#include "pl_commands.h"
#include "pl_crc.h"
#include "pl_device.h"
#include "pl_json.h"
#include "pl_messages.h"
#include "pl_types.h"

#endif
