#include "rtpproxyd.h"
