/* placeholder: being written */
#include "rtpproxyd.h"
