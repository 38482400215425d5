"""Data of the Rollout API emulator (test/emulator.py): the fixed tenancy
(JWT subjects and their credentials), the person captured live, and the
deterministic generation of people in the two shapes seen live (FUB numeric
ids, normalised UUID records) and of the other collections' fixtures.
Python 3 standard library only."""

import hashlib
import json
import os
import random
import re
import time
import unicodedata

BASE_EPOCH = 1735689600  # 2025-01-01T00:00:00Z: generated timestamps start here
UUID_BASE_MS = 0x0199E3CA2AA4  # generated UUIDv7 ids start 0199e3ca-2aa4-7...

# ---------------------------------------------------------------------------------------------
# Fixed tenancy: users (JWT sub) and their credentials
# ---------------------------------------------------------------------------------------------


def credential(cred_id, label, app_key, created, data=None):
    return {
        "id": cred_id,
        "createdAt": created,
        "appKey": app_key,
        "label": label,
        "avatar": f"https://assets.example.com/connectors/{app_key}.png",
        "data": data or {},
    }


CREDENTIALS = {
    "user-1": [
        credential("cred-1", "Follow Up Boss", "followupboss", "2025-10-20T09:00:00.000Z",
                   {"accessToken": "upstream-secret-do-not-leak"}),
    ],
    "user-multi": [
        credential("cred-a", "Follow Up Boss A", "followupboss", "2025-10-21T10:00:00.000Z"),
        credential("cred-b", "Salesforce B", "salesforce", "2025-10-21T11:00:00.000Z"),
    ],
    "user-none": [],
    "user-2": [
        credential("cred-2", "Other CRM", "other", "2025-10-22T12:00:00.000Z"),
    ],
}

# Many tenants (--tenant-users N --tenant-people M, POST /_admin/tenants): user
# tenant-user-<i> (i = 1..N) owns exactly one credential, tenant-cred-<i>, whose M people
# have FUB ids TENANT_ID_BASE * i + k (k = 1..M) and say whose they are (p<k>@tenant<i>...).
TENANT_ID_BASE = 1000000


def tenant_user(i):
    return f"tenant-user-{i}"


def tenant_cred(i):
    return f"tenant-cred-{i}"


def tenant_credentials(users):
    """{sub: [credential]} of the N tenant users."""
    return {tenant_user(i): [credential(tenant_cred(i), f"Tenant {i} CRM", "followupboss",
                                        "2025-10-23T08:00:00.000Z")]
            for i in range(1, users + 1)}


# credential -> (shape, seed, first FUB id) of its small fixed store; cred-1 gets the CLI dataset
SMALL_STORES = {
    "cred-a": ("fub", 101, 101),
    "cred-b": ("uuid", 202, None),
    "cred-2": ("uuid", 303, None),
}
SMALL_STORE_PEOPLE = 3

# The one person that came back whole from the live API (live-samples.json), kept verbatim.
LIVE_PERSON_JSON = """
{"id": 11, "created": "2025-10-22T15:33:47Z", "updated": "2025-10-22T15:34:03Z",
 "createdVia": "API", "lastActivity": "2025-10-22T15:34:03Z", "name": "Isabella Martinez",
 "firstName": "Isabella", "lastName": "Martinez", "stage": "Lead", "stageId": 2,
 "source": "Google Ads", "sourceId": 14, "sourceUrl": "", "leadFlowId": null, "delayed": false,
 "contacted": 1, "price": null, "assignedLenderId": null, "assignedLenderName": null,
 "assignedUserId": 1, "assignedPondId": null, "assignedTo": "Dev Rollout",
 "tags": ["new_lead", "buyer"],
 "emails": [{"value": "isabella.martinez@example.com", "type": "home", "status": "Invalid",
             "isPrimary": 1}],
 "phones": [{"value": "7185550166", "type": "mobile", "status": "Invalid", "isPrimary": 1,
             "normalized": "7185550166", "isLandline": false, "isOnboardingNumber": false}],
 "addresses": [], "picture": null, "socialData": [], "websiteVisits": 0, "timeframeId": null,
 "timeframeUpdated": null, "timeframeStatus": null, "timeframeDateRange": null, "claimed": true,
 "dealStatus": null, "dealStage": null, "dealName": null, "dealCloseDate": null,
 "dealPrice": null, "firstToClaimOffer": false,
 "collaborators": [{"id": 1, "name": "Dev Rollout", "assigned": true, "role": "Broker"}],
 "teamLeaders": [], "pondMembers": []}
"""
LIVE_PERSON = json.loads(LIVE_PERSON_JSON)

# ---------------------------------------------------------------------------------------------
# Deterministic data generation
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Mia", "Lucas",
    "Amelia", "Logan", "Harper", "James", "Evelyn", "Benjamin", "Abigail", "Elijah", "Emily",
    "Oliver", "Ella", "Jacob", "Chloe", "Daniel", "Grace", "Henry", "Zoë", "Samuel", "Nora",
    "Owen", "Priya", "Wei", "Fatima", "Mateo", "Aisha", "Kenji", "Sofia", "José", "Hannah", "Omar",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "O'Brien", "King", "Wright",
    "Müller", "Nguyen", "Hill", "Flores", "Green",
)
STAGES = (("Lead", 2), ("Prospect", 3), ("Active Client", 4), ("Closed", 8))
SOURCES = (("Google Ads", 14), ("Zillow", 3), ("Website", 1), ("Referral", 7), ("Open House", 9))
AGENTS = ((1, "Dev", "Rollout", "Broker"), (2, "Maria", "Lopez", "Agent"),
          (3, "Sam", "Carter", "Agent"))
TAG_POOL = ("buyer", "seller", "new_lead", "VIP", "investor")
CITIES = (("Brooklyn", "NY", "11201"), ("Austin", "TX", "78701"), ("Denver", "CO", "80202"),
          ("Seattle", "WA", "98101"), ("Miami", "FL", "33101"))
STREETS = ("Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Park Pl")
AREA_CODES = ("212", "718", "512", "303", "206", "305")
JOB_TITLES = ("Engineer", "Teacher", "Nurse", "Designer", "Accountant", "")
COMPANIES = ("Acme Corp", "Globex", "Initech", "Umbrella LLC", "")
CONTACT_TYPES = (("Buyer",), ("Seller",), ("Buyer", "Seller"), ())
ACTIVITY_TYPES = ("Call", "Email", "Text", "Meeting")
SYSTEM_SOURCES = ("Salesforce", "HubSpot", "Website Form")


def iso_z(epoch):
    """ISO-8601 UTC with seconds precision, as the FUB-backed API sends it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def iso_ms(epoch):
    """ISO-8601 UTC with milliseconds, as Rollout's own metadata fields are sent."""
    millis = int(round(epoch * 1000)) % 1000
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{millis:03d}Z"


def ascii_slug(text):
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z]", "", plain.lower())


def uuid7_text(millis, random_bits):
    """A UUIDv7-shaped string from a 48-bit millisecond stamp and 74 random bits."""
    rand_a = (random_bits >> 62) & 0xFFF
    rand_b = random_bits & ((1 << 62) - 1)
    value = (millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def uuid_for(seed, index):
    """The deterministic UUIDv7-looking id of generated record `index` under `seed`."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=10).digest()
    return uuid7_text(UUID_BASE_MS + index, int.from_bytes(digest, "big"))


def fresh_uuid():
    return uuid7_text(int(time.time() * 1000), int.from_bytes(os.urandom(10), "big"))


def record_id(style, seed, namespace, index):
    """Id of the index-th fixed record of a small collection: 1, 2, ... or a UUID."""
    return index + 1 if style == "int" else uuid_for(f"{seed}-{namespace}", index)


def pick_tags(rng, index):
    if index % 6 == 3:
        return None
    if index % 6 == 5:
        return []
    return rng.sample(TAG_POOL, rng.randint(1, 3))


def pick_emails(first, last, index):
    count = 0 if index % 5 == 4 else 2 if index % 3 == 0 else 1
    base = f"{ascii_slug(first)}.{ascii_slug(last)}.{index}"
    values = [(f"{base}@example.com", "home"), (f"{base}@work.example.com", "work")]
    return values[:count]


def pick_phones(rng, index):
    """(value, normalized, type) triples; the second phone is formatted, not normalized."""
    if index % 7 == 6:
        return []
    digits = f"{rng.choice(AREA_CODES)}555{index % 10000:04d}"
    phones = [(digits, digits, "mobile")]
    if index % 4 == 0:
        work = f"{rng.choice(AREA_CODES)}555{(index * 7) % 10000:04d}"
        phones.append((f"({work[:3]}) {work[3:6]}-{work[6:]}", work, "work"))
    return phones


def pick_price(rng, index):
    if index % 4 == 0:
        return None
    if index % 4 == 2:
        return rng.randrange(100, 900) * 1000 + 0.5
    return rng.randrange(100, 900) * 1000


def pick_beds(rng, index):
    return None if index % 4 == 0 else 2.5 if index % 4 == 1 else rng.randint(1, 5)


def person_profile(seed, index):
    """Shape-independent, deterministic facts about generated person number `index`."""
    rng = random.Random(seed * 1_000_003 + index)
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    created = BASE_EPOCH + index * 3600 + rng.randrange(3600)
    updated = created + rng.randrange(60, 30 * 86400)
    city, state, code = rng.choice(CITIES)
    return {
        "rng": rng,
        "first": first,
        "last": last,
        "stage": STAGES[rng.randrange(len(STAGES))],
        "source": rng.choice(SOURCES),
        "agent": rng.choice(AGENTS),
        "created": created,
        "updated": None if index % 11 == 10 else updated,
        "last_activity": None if index % 5 == 2 else updated + rng.randrange(3600),
        "tags": pick_tags(rng, index),
        "emails": pick_emails(first, last, index),
        "phones": pick_phones(rng, index),
        "address": None if index % 2 else {
            "type": "home", "street": f"{rng.randint(1, 999)} {rng.choice(STREETS)}",
            "city": city, "state": state, "code": code, "country": "US"},
        "beds": pick_beds(rng, index),
        "price": pick_price(rng, index),
        "birthday": None if index % 3 == 1 else
        f"{rng.randint(1950, 2000)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "contact_types": list(CONTACT_TYPES[index % len(CONTACT_TYPES)]),
        "job": rng.choice(JOB_TITLES),
        "company": rng.choice(COMPANIES),
        "consent": {"email": index % 2 == 0, "call": index % 3 != 0, "text": index % 4 == 1},
    }


def optional_iso(epoch, formatter=iso_z):
    return None if epoch is None else formatter(epoch)


def fub_person(seed, index, first_id):
    """A person in the raw Follow Up Boss shape the live API returned (numeric ids, 1/0 flags)."""
    p = person_profile(seed, index)
    agent_id, agent_first, agent_last, _ = p["agent"]
    agent_name = f"{agent_first} {agent_last}"
    return {
        "id": first_id + index,
        "created": iso_z(p["created"]),
        "updated": optional_iso(p["updated"]),
        "createdVia": ("API", "Import", "Website")[index % 3],
        "lastActivity": optional_iso(p["last_activity"]),
        "name": f"{p['first']} {p['last']}",
        "firstName": p["first"],
        "lastName": p["last"],
        "stage": p["stage"][0],
        "stageId": p["stage"][1],
        "source": p["source"][0],
        "sourceId": p["source"][1],
        "sourceUrl": "",
        "price": None,
        "assignedUserId": agent_id,
        "assignedPondId": None,
        "assignedTo": agent_name,
        "tags": p["tags"],
        "emails": [{"value": value, "type": kind, "status": "Valid", "isPrimary": int(i == 0)}
                   for i, (value, kind) in enumerate(p["emails"])],
        "phones": [{"value": value, "type": kind, "status": "Valid", "isPrimary": int(i == 0),
                    "normalized": normalized, "isLandline": False, "isOnboardingNumber": False}
                   for i, (value, normalized, kind) in enumerate(p["phones"])],
        "addresses": [p["address"]] if p["address"] else [],
        "picture": None,
        "timeframeId": None,
        "averageBeds": p["beds"],
        "averagePrice": p["price"],
        "birthday": p["birthday"],
        "contactTypes": p["contact_types"],
        "jobTitle": p["job"],
        "companyName": p["company"],
        "communicationsConsent": p["consent"],
        "collaborators": [{"id": agent_id, "name": agent_name, "assigned": True,
                           "role": p["agent"][3]}],
    }


def tenant_person(tenant, index):
    """Person k = index + 1 of tenant i in the FUB shape: id TENANT_ID_BASE * i + k, named
    and e-mailed after its tenant (Person<k> Tenant<i>, p<k>@tenant<i>.example.com)."""
    k = index + 1
    person = fub_person(tenant, index, TENANT_ID_BASE * tenant + 1)
    person.update(firstName=f"Person{k}", lastName=f"Tenant{tenant}",
                  name=f"Person{k} Tenant{tenant}",
                  emails=[{"value": f"p{k}@tenant{tenant}.example.com", "type": "work",
                           "status": "Valid", "isPrimary": 1}])
    return person


def uuid_person(seed, index, cred_id):
    """A person in Rollout's normalised shape (string ids, boolean flags, original record)."""
    p = person_profile(seed, index)
    rng = p["rng"]
    contact_id = 116 + index
    synced = (p["updated"] or p["created"]) + 1.25
    return {
        "id": uuid_for(seed, index),
        "createdAt": iso_ms(p["created"] + 0.5),
        "updatedAt": iso_ms(synced),
        "recordMissingCount": 0,
        "credentialId": cred_id,
        "originalIds": {"contact": contact_id},
        "original": {"contact": {"Id": contact_id, "FirstName": p["first"],
                                 "LastName": p["last"], "CreatedDate": iso_z(p["created"])}},
        "name": f"{p['first']} {p['last']}",
        "firstName": p["first"],
        "lastName": p["last"],
        "assignedUserId": None if index % 5 == 3 else uuid_for(f"{seed}-users", p["agent"][0] - 1),
        "assignedPondId": None,
        "officeId": None if index % 2 else "office-1",
        "timeframeId": None if index % 3 else "timeframe-3",
        "stage": p["stage"][0],
        "stageId": str(p["stage"][1]),
        "tags": p["tags"],
        "created": iso_z(p["created"]),
        "updated": optional_iso(p["updated"]),
        "rolloutUpdated": iso_ms(synced),
        "addresses": [p["address"]] if p["address"] else [],
        "emails": [{"value": value, "type": kind, "status": "Valid", "isPrimary": i == 0}
                   for i, (value, kind) in enumerate(p["emails"])],
        "phones": [{"value": value, "type": kind, "status": "Valid",
                    "isPrimary": True if i == 0 else None}
                   for i, (value, _, kind) in enumerate(p["phones"])],
        "source": p["source"][0],
        "sourceId": str(p["source"][1]),
        "systemSource": rng.choice(SYSTEM_SOURCES),
        "averageBeds": p["beds"],
        "averagePrice": p["price"],
        "birthday": p["birthday"],
        "lastActivity": optional_iso(p["last_activity"]),
        "lastActivityType": "" if p["last_activity"] is None else rng.choice(ACTIVITY_TYPES),
        "contactTypes": p["contact_types"],
        "jobTitle": p["job"],
        "companyName": p["company"],
        "communicationsConsent": p["consent"],
    }


def make_users(style, seed, person_ids):
    users = []
    for i, (number, first, last, role) in enumerate(AGENTS):
        stamp = BASE_EPOCH - 86400 * (30 - i)
        users.append({
            "id": record_id(style, seed, "users", i), "firstName": first, "lastName": last,
            "email": f"{first.lower()}.{last.lower()}@agency.example.com",
            "phone": f"212555{1000 + number}", "role": role, "status": "Active",
            "timezone": "America/New_York", "created": iso_z(stamp), "updated": iso_z(stamp),
            "originalIds": {"user": number}, "original": {"user": {"id": number}},
            "teamId": None, "address": None, "username": f"{first.lower()}{number}",
            "type": "user", "offices": [{"id": "office-1"}],
        })
    return users


def person_ref(person_ids, i):
    return person_ids[i % len(person_ids)] if person_ids else None


def make_notes(style, seed, person_ids):
    return [{
        "id": record_id(style, seed, "notes", i), "personId": person_ref(person_ids, i),
        "subject": f"Call summary {i + 1}", "body": f"Discussed listing #{i + 1}.",
        "isHtml": False, "created": iso_z(BASE_EPOCH + 600 * i),
        "updated": iso_z(BASE_EPOCH + 600 * i + 60),
        "originalIds": {"note": 500 + i}, "original": {"note": {"id": 500 + i}},
    } for i in range(5)]


def make_tasks(style, seed, person_ids):
    return [{
        "id": record_id(style, seed, "tasks", i), "name": f"Follow up #{i + 1}",
        "type": ("Call", "Email", "Follow Up")[i % 3], "personId": person_ref(person_ids, i),
        "assignedUserId": record_id(style, seed, "users", i % len(AGENTS)),
        "dueDateTime": iso_z(BASE_EPOCH + 86400 * (i + 1)), "isCompleted": i % 2 == 1,
        "created": iso_z(BASE_EPOCH + 900 * i), "updated": iso_z(BASE_EPOCH + 900 * i + 60),
        "originalIds": {"task": 700 + i}, "original": {"task": {"id": 700 + i}},
    } for i in range(5)]


def make_text_messages(style, seed, person_ids):
    return [dict(common(style, seed, "textMessages", i, 1100),
                 personId=person_ref(person_ids, i), userId=record_id(style, seed, "users", 0),
                 message=f"Hello again ({i + 1})", isIncoming=i % 2 == 0, status="Delivered",
                 toNumber="7185550166", fromNumber="2125551001", externalLabel=None,
                 externalUrl=None, sent=iso_z(BASE_EPOCH + 300 * i)) for i in range(3)]


def common(style, seed, path, i, number):
    """id, created, updated, originalIds and original of a fixture record."""
    return {"id": record_id(style, seed, path, i), "created": iso_z(BASE_EPOCH + 3600 * i),
            "updated": iso_z(BASE_EPOCH + 3600 * i + 60),
            "originalIds": {path: number + i}, "original": {path: {"id": number + i}}}


def make_calls(style, seed, person_ids):
    return [dict(common(style, seed, "calls", i, 900), personId=person_ref(person_ids, i),
                 userId=record_id(style, seed, "users", 0), phone="7185550166",
                 note=f"Left a voicemail ({i + 1})", isIncoming=i % 2 == 0,
                 outcome=("Interested", "No answer", "Left message")[i % 3],
                 duration=(35, None, 12.5)[i % 3], toNumber="7185550166",
                 fromNumber="2125551001", recordingUrl=None) for i in range(3)]


def make_teams(style, seed, person_ids):
    return [common(style, seed, "teams", i, 40) for i in range(2)]


def make_email_messages(style, seed, person_ids):
    return [dict(common(style, seed, "emailMessages", i, 1200),
                 personId=person_ref(person_ids, i), userId=record_id(style, seed, "users", 0),
                 threadId=f"thread-{i // 2}", subject=f"Re: showing {i + 1}",
                 body="See you then.", sender={"email": "agent@agency.example.com"},
                 recipients=[{"email": "isabella.martinez@example.com"}], isRead=i % 2 == 0,
                 isStarred=False, isIncoming=i % 2 == 1, sent=iso_z(BASE_EPOCH + 100 * i),
                 received=None) for i in range(3)]


def make_appointments(style, seed, person_ids):
    return [dict(common(style, seed, "appointments", i, 1500),
                 personId=person_ref(person_ids, i), userId=record_id(style, seed, "users", 0),
                 title=f"Showing {i + 1}", description="Open house", location="12 Main St",
                 isAllDay=False, type="Showing", startsAt=iso_z(BASE_EPOCH + 86400 * (i + 2)),
                 endsAt=iso_z(BASE_EPOCH + 86400 * (i + 2) + 3600)) for i in range(3)]


def make_named(path, names, number):
    def make(style, seed, person_ids):
        return [{"id": record_id(style, seed, path, i), "name": name, "orderWeight": i + 1,
                 "originalIds": {path: number + i}, "original": {path: {"id": number + i}}}
                for i, name in enumerate(names)]
    return make


def make_events(style, seed, person_ids):
    return [dict(common(style, seed, "events", i, 2000), personId=person_ref(person_ids, i),
                 noteId=None, propertyId=None, occurredAt=iso_z(BASE_EPOCH + 50 * i),
                 message="Viewed a listing", description="Property page", source="Website",
                 system="IDX", type="Viewed Property", pageTitle=f"12{i} Main St",
                 pageUrl=f"https://example.com/listing/{i}", pageReferrer="https://example.com/",
                 pageDuration=(42, 7.5)[i % 2]) for i in range(2)]


def make_smart_lists(style, seed, person_ids):
    return [dict(common(style, seed, "smart-lists", i, 60), name=name, description="",
                 isFub2=False, shared=i == 0, userId=record_id(style, seed, "users", 0),
                 conditions=[{"field": "stage", "value": "Lead"}], sortBy="created",
                 columns=["name", "stage"], sharedWith=[])
            for i, name in enumerate(("Hot leads", "Sellers"))]


def make_lists(style, seed, person_ids):
    return [dict(common(style, seed, "lists", i, 80), name=name, isFavorite=i == 0,
                 description="", peopleParticipantIds=[id_key(p) for p in person_ids[:2]])
            for i, name in enumerate(("Open house", "Newsletter"))]


def make_custom_fields(style, seed, person_ids):
    fields = [("text", "Spouse", "customSpouse", {}),
              ("date", "Anniversary", "customAnniversary", {"isRecurring": True}),
              ("dropdown", "Source detail", "customSourceDetail", {"choices": ["Zillow", "Referral"]})]
    return [dict({"type": t, "id": record_id(style, seed, "customFields", i), "label": label,
                  "name": name, "originalIds": {"customField": 90 + i},
                  "original": {"customField": {"id": 90 + i}}}, **extra)
            for i, (t, label, name, extra) in enumerate(fields)]


def make_webhooks(style, seed, person_ids):
    return [{"id": record_id(style, seed, "webhooks", 0), "status": "Active",
             "event": "peopleCreated", "url": "https://app.example.com/hooks/rollout",
             "filters": {}}]

def id_key(value):
    """The text an id is looked up by: strings as they are, numbers as their JSON text."""
    return value if isinstance(value, str) else json.dumps(value)
