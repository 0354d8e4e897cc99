-- One step of the sweep after a clear() that met traces without an index record:
-- deletes the keys of this prefix that one SCAN step finds. ARGV: the SCAN cursor.
-- Returns the next cursor ('0' when done). The prefix is percent-encoded, so the
-- pattern has no glob character but the final '*'.
local reply = redis.call('SCAN', ARGV[1], 'MATCH', base .. '*', 'COUNT', 1000)
if #reply[2] > 0 then
  redis.call('DEL', unpack(reply[2]))
end
return reply[1]
