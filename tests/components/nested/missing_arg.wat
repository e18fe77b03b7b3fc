;; Refused at load: the nested component imports "log", and the root
;; instantiates it without giving it.
(component
  (component $inner
    (import "log" (func (param "message" string))))
  (instance $in (instantiate $inner))
)
