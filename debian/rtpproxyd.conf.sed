# From contrib/rtpproxyd.conf.sample to the configuration the Debian
# package installs as /etc/rtpproxyd/rtpproxyd.conf (see debian/rules).
1a\
#\
# As packaged for Debian, one keyword is set: "user rtpproxyd", the system\
# user the package made.  The daemon binds its ports as root, then runs as\
# that user, which must be able to read this file and the files it names\
# (tokens, TLS keys: chgrp rtpproxyd, chmod 640), also for a restart\
# without loss (an upgrade, rtpproxyd -r).
s|^#user rtpproxy$|user rtpproxyd|
s|^#group rtpproxy$|#group rtpproxyd|
s|^#pidfile /run/rtpproxyd\.pid$|#pidfile /run/rtpproxyd/rtpproxyd.pid|
s|such as /run/rtpproxyd\.pid\.$|here /run/rtpproxyd/rtpproxyd.pid.|
