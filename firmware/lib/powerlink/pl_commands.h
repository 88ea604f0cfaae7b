// The command set of protocol v1 (docs/protocol.md §7): checking a command's arguments and
// applying its effect on the settings.
#ifndef POWERLINK_PL_COMMANDS_H
#define POWERLINK_PL_COMMANDS_H

#include "pl_json.h"
#include "pl_messages.h"
#include "pl_types.h"

namespace powerlink {

// Whether the command is `hello` (a sync point, handled by the link itself).
bool is_hello(const JsonBody& body, const HostMessage& cmd);

// Check a command and, if it passes, apply it to `settings`. Returns Err::None, or the code
// a device refuses it with, checked in this order: Unknown (no such command), Arg (a missing,
// unexpected or wrongly typed argument), Range (an argument outside its range).
Err run_command(const JsonBody& body, const HostMessage& cmd, Settings* settings);

}  // namespace powerlink

#endif
