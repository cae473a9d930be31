# `cmake --build BUILD --target package` (or cpack in BUILD) makes a Debian package of what
# `cmake --install` installs. Configure with -DCMAKE_INSTALL_PREFIX=/usr for one that puts
# the configuration in /etc/nflowd; dpkg-shlibdeps (dpkg-dev) works out the library
# dependencies from the binaries.
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "nflowd: packages are built for prefix ${CMAKE_INSTALL_PREFIX}; "
                 "a Debian package wants -DCMAKE_INSTALL_PREFIX=/usr")
endif()

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "nflowd")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_CONTACT "nflowd maintainers <nflowd@localhost>")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
# Absolute destinations (the /etc config) land in the package, not on the build machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "nftables | iptables")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "nfdump")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "NetFlow v5 exporter fed by NFLOG\n nflowd is the userspace successor of the ipt_NETFLOW kernel module: an\n iptables or nftables NFLOG rule delivers packet headers, nflowd keeps the\n flow cache and exports NetFlow v5 to one or more collectors. nflowctl reads\n and changes a running daemon.")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://example.invalid/nflowd")

# The configuration file is a conffile: dpkg -r keeps local edits, dpkg -P removes them.
file(CONFIGURE OUTPUT debian/conffiles
     CONTENT "${CMAKE_INSTALL_FULL_SYSCONFDIR}/nflowd/nflowd.conf\n")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${CMAKE_CURRENT_BINARY_DIR}/debian/conffiles")

include(CPack)
