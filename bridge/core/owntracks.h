/* owntracks.h - pure: OwnTracks location payloads (SPEC section 5). */
#ifndef T2M_OWNTRACKS_H
#define T2M_OWNTRACKS_H

#include <stddef.h>

#include "protocol.h"

/* Two-character tracker id from an alias or token: first two alphanumerics, upper-cased
 * ("Van 12" -> "VA", "e4855fba-..." -> "E4"); padded with 'X'. out gets 3 bytes. */
void t2m_owntracks_tid(char out[3], const char *name, size_t len);

/* {"_type":"location","lat":..,"lon":..,"tst":<int s>,"vel":<int km/h>,"acc":<int m >= 1>,
 *  "cog":<int>,"tid":".."}; lat/lon required (returns 0 without them), others left out when
 * absent, tst = now_s when the update has no timestamp. Returns length or 0. */
size_t t2m_owntracks_payload(char *buf, size_t n, const struct t2m_update *u, const char tid[3],
                             long long now_s);

#endif
