# packaging.cmake - what `cmake --install` puts beside the binary, and the Debian package
# (`cpack -G DEB` in a build tree configured with -DCMAKE_INSTALL_PREFIX=/usr, as
# tests/deploy/test_deb.sh does).
include(GNUInstallDirs)

# With the /usr prefix the config and the unit go where Debian wants them (/etc, /lib/systemd);
# under any other prefix they stay inside it, so a plain install never writes to /etc.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(T2M_CONF_DIR /etc/telematics2mqtt)
  set(T2M_UNIT_DIR /lib/systemd/system)
else()
  set(T2M_CONF_DIR ${CMAKE_INSTALL_SYSCONFDIR}/telematics2mqtt)
  set(T2M_UNIT_DIR lib/systemd/system)
endif()

# Debian policy wants man pages compressed, reproducibly (-n: no name or time stamp).
set(T2M_MAN_GZ ${CMAKE_BINARY_DIR}/telematics2mqtt.1.gz)
add_custom_command(OUTPUT ${T2M_MAN_GZ}
  COMMAND gzip -9nc ${CMAKE_SOURCE_DIR}/docs/telematics2mqtt.1 > ${T2M_MAN_GZ}
  DEPENDS ${CMAKE_SOURCE_DIR}/docs/telematics2mqtt.1 VERBATIM)
add_custom_target(t2m_manpage ALL DEPENDS ${T2M_MAN_GZ})

install(FILES ${T2M_MAN_GZ} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/config/telematics2mqtt.conf DESTINATION ${T2M_CONF_DIR})
install(FILES ${CMAKE_SOURCE_DIR}/deploy/systemd/telematics2mqtt.service DESTINATION ${T2M_UNIT_DIR})
# The unit's ExecStartPre (and the image's seed step): the first refresh token into the state dir.
install(PROGRAMS ${CMAKE_SOURCE_DIR}/deploy/scripts/t2m-seed-refresh-token
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/telematics2mqtt)

set(CPACK_PACKAGE_NAME telematics2mqtt)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "telematics2mqtt")
set(CPACK_RESOURCE_FILE_LICENSE ${CMAKE_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGE_CONTACT "telematics2mqtt maintainers <telematics2mqtt@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "bridge from the telematics real-time WebSocket API to MQTT")
set(CPACK_PACKAGE_DESCRIPTION
  "Publishes device positions from the telematics real-time API to an MQTT broker as retained\n\
JSON, with Home Assistant discovery and OwnTracks locations; /healthz and /metrics over HTTP.")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
# Depends are read off the binary by dpkg-shlibdeps (dpkg-dev) when it is there; the fallback
# names Debian 12's runtime packages of the libraries CMakeLists.txt links.
find_program(T2M_DPKG_SHLIBDEPS dpkg-shlibdeps)
# libjs-leaflet: the status page's map (SPEC 7), served from /usr/share/javascript/leaflet.
if(T2M_DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libjs-leaflet")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
    "libc6, libssl3, libwebsockets17, libpaho-mqtt1.3, libjson-c5, libconfig9, libmosquitto1, libsystemd0, libjs-leaflet")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "ca-certificates")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "mosquitto")

# conffiles: dpkg keeps the admin's edits of the config across upgrades. The maintainer scripts
# only tell systemd about the unit; enabling it is left to the admin (it needs a token first).
set(T2M_DEB_DIR ${CMAKE_BINARY_DIR}/deb-control)
file(MAKE_DIRECTORY ${T2M_DEB_DIR})
file(WRITE ${T2M_DEB_DIR}/conffiles "/etc/telematics2mqtt/telematics2mqtt.conf\n")
foreach(script postinst postrm)
  file(WRITE ${T2M_DEB_DIR}/${script}
    "#!/bin/sh\nset -e\nif [ -d /run/systemd/system ]; then\n    systemctl daemon-reload || true\nfi\n")
  file(CHMOD ${T2M_DEB_DIR}/${script} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
    GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${T2M_DEB_DIR}/conffiles ${T2M_DEB_DIR}/postinst ${T2M_DEB_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
