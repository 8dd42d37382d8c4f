-- wrk script: every request is a Dropbox-style signed notification for one account.
-- The body and its signature are computed by bench/webhook (the shell script) and passed in.
wrk.method = "POST"
wrk.body = os.getenv("WEBHOOK_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Dropbox-Signature"] = os.getenv("WEBHOOK_SIGNATURE")

function response(status, headers, body)
  if status ~= 200 then
    io.stderr:write("unexpected status " .. status .. "\n")
  end
end
